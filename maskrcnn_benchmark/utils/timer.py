"""A wall-clock timer that keeps a running average of the timed intervals."""
import datetime
import time


class Timer(object):
    def __init__(self):
        self.reset()

    @property
    def average_time(self):
        return self.total_time / self.calls if self.calls > 0 else 0.0

    def tic(self):
        self.start_time = time.time()

    def toc(self, average=True):
        """Stop timing the current interval; return the running average (or this interval)."""
        self.add(time.time() - self.start_time)
        return self.average_time if average else self.diff

    def add(self, time_diff):
        self.diff = time_diff
        self.total_time += time_diff
        self.calls += 1

    def reset(self):
        self.start_time = 0.0
        self.diff = 0.0
        self.total_time = 0.0
        self.calls = 0

    def avg_time_str(self):
        return get_time_str(self.average_time)


def get_time_str(time_diff):
    """Seconds as ``H:MM:SS`` (with days when longer), e.g. 3725 -> '1:02:05'."""
    return str(datetime.timedelta(seconds=int(time_diff)))

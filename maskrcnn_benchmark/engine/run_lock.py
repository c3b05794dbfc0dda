"""One training run per OUTPUT_DIR: a lock file that names its holder.

Two runs writing into one folder overwrite each other's checkpoints and interleave their
metrics.json lines. The first run takes ``OUTPUT_DIR/train.lock`` with an exclusive ``flock`` and
writes its pid, host, start time and command line into it; a second run finds the lock taken and
stops with an error that names the folder and the holder. The kernel drops the lock when its
process dies, however it dies (kill -9 included), so a lock file left by a dead run is recognised
as stale: the next run takes it over and says so.
"""
import datetime
import fcntl
import json
import logging
import os
import socket
import sys

LOCK_FILE = "train.lock"
logger = logging.getLogger(__name__)


class OutputDirLockedError(RuntimeError):
    """Another live run holds the OUTPUT_DIR lock."""


def _describe(holder):
    if not holder:
        return "a process that wrote no details"
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}: "
            f"{holder.get('command', '?')}")


def _read_holder(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 65536).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"command": text[:200]}


class OutputDirLock(object):
    """``with OutputDirLock(folder):`` holds ``folder/train.lock`` (see the module docstring).
    ``previous`` describes the holder of a stale lock taken over, None otherwise."""

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self.previous = None
        self._fd = None

    def acquire(self):
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as err:
            raise OSError(err.errno, f"cannot create OUTPUT_DIR {self.folder}: {err.strerror}") from err
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as err:
                raise OSError(err.errno, f"OUTPUT_DIR {self.folder} is not writable ({err.strerror}: {self.path}); "
                                         "choose another OUTPUT_DIR") from err
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise OutputDirLockedError(
                    f"OUTPUT_DIR {self.folder} is in use by another training run ({_describe(holder)}; lock "
                    f"{self.path}): two runs in one folder overwrite each other's checkpoints and metrics. "
                    "Wait for it to finish, stop it, or choose another OUTPUT_DIR.") from None
            except OSError as err:  # a file system without flock: run unlocked rather than not at all
                os.close(fd)
                logger.warning("cannot lock %s (%s): another run in this OUTPUT_DIR would not be detected",
                               self.path, err)
                return self
            # the previous holder may have removed the file between our open and flock: retry on the new one
            try:
                same_file = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)
        self.previous = _read_holder(fd)
        if self.previous is not None:
            logger.warning("OUTPUT_DIR %s: the run that held %s (%s) ended without releasing it (killed?); "
                           "taking it over", self.folder, self.path, _describe(self.previous))
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.datetime.now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode("utf-8"))
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        try:
            if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
                os.remove(self.path)
        except OSError:
            pass
        os.close(self._fd)  # drops the flock
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False

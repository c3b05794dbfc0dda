"""One training run per OUTPUT_DIR: the lock names its holder, a dead holder's lock is taken over."""
import json
import logging
import os
import signal
import socket
import subprocess
import sys

import pytest

from maskrcnn_benchmark.engine.run_lock import LOCK_FILE, OutputDirLock, OutputDirLockedError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOLD = ("import sys\n"
        "from maskrcnn_benchmark.engine.run_lock import OutputDirLock\n"
        "lock = OutputDirLock(sys.argv[1]).acquire()\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n")


def _holder(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": ROOT})
    assert process.stdout.readline().strip() == b"locked"
    return process


def test_a_second_lock_on_the_folder_is_refused_naming_folder_and_holder(tmp_path):
    with OutputDirLock(str(tmp_path)):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputDirLockedError) as error:
            OutputDirLock(str(tmp_path)).acquire()
        message = str(error.value)
        assert f"OUTPUT_DIR {tmp_path} is in use by another training run" in message
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
    assert not (tmp_path / LOCK_FILE).exists()  # released: the file is gone
    OutputDirLock(str(tmp_path)).acquire().release()


def test_the_lock_of_a_killed_run_is_detected_as_stale_and_taken_over(tmp_path, caplog):
    process = _holder(tmp_path)
    try:
        with pytest.raises(OutputDirLockedError, match=f"pid {process.pid} on host"):
            OutputDirLock(str(tmp_path)).acquire()
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert (tmp_path / LOCK_FILE).exists()  # kill -9 left the file behind
    with caplog.at_level(logging.WARNING, logger="maskrcnn_benchmark.engine.run_lock"):
        lock = OutputDirLock(str(tmp_path)).acquire()
    try:
        assert lock.previous["pid"] == process.pid
        assert any(f"pid {process.pid}" in r.getMessage() and "taking it over" in r.getMessage() for r in caplog.records)
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        lock.release()

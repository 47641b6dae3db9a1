"""One builder per output: an exclusive file lock per output folder, so concurrent runs wait, then hit.

Two runs on one data root that need the same step output would both build it (and one copy
would be dropped at publishing). With :func:`output_lock` held around "look up, else build",
the second run waits for the first and then finds its output in the cache. The lock is an
``fcntl.flock`` on a file under ``<data_root>/.locks`` (:func:`lock_path`): the kernel releases it when its holder
exits, even by SIGKILL, so a crashed run never blocks the next one. Waiting polls, so a stop
signal (:func:`scene2world.stopping.check`) ends the wait at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from scene2world.cache import STEP_FOLDERS
from scene2world.stopping import check

LOCKS_DIR = ".locks"
POLL_S = 0.2


def lock_path(out_dir: Path) -> Path:
    """The lock file guarding ``out_dir``: ``<data_root>/.locks/<step>-<name>.lock`` for a step folder
    of a data root (the step folder itself holds only outputs), else ``<parent>/.locks/<name>.lock``."""
    out_dir = Path(out_dir).absolute()
    if out_dir.parent.name in STEP_FOLDERS:
        return out_dir.parent.parent / LOCKS_DIR / f"{out_dir.parent.name}-{out_dir.name}.lock"
    return out_dir.parent / LOCKS_DIR / f"{out_dir.name}.lock"


@contextlib.contextmanager
def output_lock(out_dir: Path, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of ``out_dir`` for the block; ``on_wait(lock)`` is called once if another holds it."""
    path = lock_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait(path)
                waited = True
                check()
                time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # releases the lock

"""Rank heartbeats: a hung rank (deadlocked, SIGSTOPped) is found and the launch stopped.

The launcher gives the ranks a folder in ``S2W_HEARTBEAT_DIR``. A rank that supports it calls
:func:`start` once: a daemon thread then touches ``<dir>/<rank>`` every :data:`INTERVAL_S`
seconds. A stopped or wedged process stops touching it (a thread of a process stopped by a
signal does not run), so :func:`stale` reports it after the timeout. Ranks that never write
a heartbeat (a third-party engine such as Cosmos) are not watched.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

ENV = "S2W_HEARTBEAT_DIR"
INTERVAL_S = 1.0


def start(rank: int | None = None) -> bool:
    """Begin this rank's heartbeat when the launcher asked for one; True if it started."""
    folder = os.environ.get(ENV)
    if not folder:
        return False
    rank = int(os.environ.get("RANK", "0")) if rank is None else rank
    path = Path(folder) / str(rank)

    def beat() -> None:
        while True:
            try:
                path.touch()
            except OSError:
                return
            time.sleep(INTERVAL_S)

    threading.Thread(target=beat, name="s2w-heartbeat", daemon=True).start()
    return True


def stale(folder: Path, timeout_s: float, now: float | None = None) -> dict[int, float]:
    """Ranks whose heartbeat is older than ``timeout_s`` seconds: {rank: seconds since the last one}."""
    now = time.time() if now is None else now
    out = {}
    for path in Path(folder).glob("*"):
        if path.name.isdigit():
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            if age > timeout_s:
                out[int(path.name)] = age
    return out

"""Temporary outputs that name their owner, so a later run can remove those of dead processes.

Every hidden temporary that scene2world writes beside an output (a step's ``.<name>.staging-*`` folder,
a writer's ``.<name>.partial-*`` file; the convention of :mod:`scene2world.atomic`) carries
``<pid>@<host>`` of the process that made it. A
process killed with SIGKILL cannot clean up; the next run that writes the same output removes
the temporaries whose owner is gone: same host, pid no longer running. Anything else (another
host on a shared disk, a live or reused pid, names without an owner) is left alone: a temporary
is only ever disk space, never mistaken for a finished output.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

_OWNER = re.compile(r"(?:^|-)(\d+)@([A-Za-z0-9_]+)-")
_host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def owner_tag() -> str:
    """``<pid>@<host>`` of this process (host reduced to [A-Za-z0-9_])."""
    return f"{os.getpid()}@{_host}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def is_orphan(name: str) -> bool:
    """True when the temporary ``name`` names a dead owner on this host.

    The owner is the last ``-<pid>@<host>-`` in the name (it follows the output's own name).
    """
    matches = list(_OWNER.finditer(name))
    if not matches:
        return False
    match = matches[-1]
    pid, host = int(match.group(1)), match.group(2)
    return host == _host and pid != os.getpid() and not _running(pid)


def remove_paths(paths: Iterable[Path]) -> list[Path]:
    """Delete each of ``paths``, file or folder (best effort); returns them."""
    removed = []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def remove_orphans(paths: Iterable[Path]) -> list[Path]:
    """Delete the files or folders among ``paths`` whose owner is dead (:func:`is_orphan`)."""
    return remove_paths(p for p in paths if is_orphan(p.name))

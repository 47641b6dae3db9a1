"""Content hash of a folder: the cache-key input for local dataset folders (the download step) and for a
folder of clips rendered as is (the render step); a core helper, so that steps meet only through manifests.

The digest covers every regular file's path relative to the folder and its sha256, sorted, so it
does not depend on where the folder lies, on file times or on the order the filesystem lists
entries; renaming, adding, removing or editing one file changes it. Empty folders do not count.
Symbolic links are refused (DatasetError), as they are in dataset folders and archives.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from scene2world.errors import DatasetError
from scene2world.manifest import sha256_file

DIGEST_VERSION = "tree-v1"
"""Written into every digest; bump it if the digest's layout changes."""


def tree_files(folder: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``folder`` as (POSIX path relative to ``folder``, absolute path), sorted by path.

    Raises DatasetError if ``folder`` is not a folder, or holds a symbolic link or a special file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: not a folder; cannot take its content digest")
    found: list[tuple[str, Path]] = []

    def on_error(err: OSError) -> None:
        raise DatasetError(f"{err.filename}: cannot list this folder: {err.strerror}") from err

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            path = base / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise DatasetError(
                    f"{path}: symbolic links are not accepted in a dataset folder; copy the link's target instead"
                )
            if stat.S_ISREG(mode):
                found.append((path.relative_to(folder).as_posix(), path))
            elif not stat.S_ISDIR(mode):
                raise DatasetError(f"{path}: not a regular file or folder (device, FIFO or socket)")
    return sorted(found, key=lambda item: item[0].encode("utf-8", "surrogateescape"))


def tree_digest(folder: Path) -> str:
    """sha256 (hex) of ``folder``'s content: sorted relative paths with each file's sha256; see the module doc."""
    h = hashlib.sha256(f"{DIGEST_VERSION}\n".encode())
    for rel, path in tree_files(folder):
        h.update(rel.encode("utf-8", "surrogateescape"))
        h.update(b"\x00")
        h.update(sha256_file(path).encode())
        h.update(b"\n")
    return h.hexdigest()

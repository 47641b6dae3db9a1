"""What a dataset SOURCE string names: a local folder, a local archive, a ``file://`` URL or an http(s) URL.

Classification only looks at the string and the local filesystem; it never touches the network.
A ``file://`` URL is a local folder or archive like a path (``scheme`` says how it was written);
a dataset *name* (a key of ``PipelineConfig.datasets``) is resolved to its source first.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from scene2world.errors import DatasetError

SourceKind = Literal["folder", "archive", "url"]
SourceScheme = Literal["path", "file", "http", "https"]
ArchiveFormat = Literal["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"]

ARCHIVE_SUFFIXES: tuple[tuple[str, ArchiveFormat], ...] = (
    (".tar.gz", "tar.gz"),
    (".tgz", "tar.gz"),
    (".tar.bz2", "tar.bz2"),
    (".tbz2", "tar.bz2"),
    (".tar.xz", "tar.xz"),
    (".txz", "tar.xz"),
    (".tar", "tar"),
    (".zip", "zip"),
)
"""File-name endings recognised as archives (longest first), with the format they mean."""

ACCEPTED_FORMS = (
    "a dataset name from `datasets`, an existing folder, an archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz), "
    "a file:// URL of a folder or archive, or an http(s):// URL"
)


@dataclass(frozen=True)
class Source:
    """A classified dataset source.

    ``kind``: ``folder`` and ``archive`` are local (``path`` is set, absolute), ``url`` is remote (``url`` is set).
    ``scheme``: how it was written: a plain ``path``, a ``file`` URL, an ``http``/``https`` URL.
    ``archive_format`` comes from the name's ending; for a URL without a known ending it is None and the format is
    sniffed after download. ``name`` is the dataset name it was resolved from, if any; ``value`` the string as given.
    """

    kind: SourceKind
    value: str
    scheme: SourceScheme = "path"
    path: Path | None = None
    url: str | None = None
    archive_format: ArchiveFormat | None = None
    name: str | None = None

    @property
    def is_local(self) -> bool:
        """True for sources read from the local filesystem (folders and archives, as paths or file:// URLs)."""
        return self.kind != "url"


def archive_format(name: str) -> ArchiveFormat | None:
    """Return the archive format named by a file name's ending (``x.tar.gz`` → ``tar.gz``) or None; any case."""
    lower = name.lower()
    for suffix, fmt in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(lower) > len(suffix):
            return fmt
    return None


def classify_source(
    source: str | os.PathLike[str],
    *,
    datasets: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Source:
    """Classify ``source``; DatasetError naming the value and the accepted forms if it is none of them.

    ``datasets`` maps dataset names to sources (``PipelineConfig.datasets``); a name is looked up before anything
    else. Relative paths are taken from ``base_dir`` (default: the current directory). Local folders and archives
    must exist; an http URL is not contacted.
    """
    value = (os.fspath(source) if isinstance(source, os.PathLike) else str(source)).strip()
    if not value:
        raise DatasetError(f"dataset source is empty; expected {ACCEPTED_FORMS}")
    if datasets and value in datasets:
        resolved = classify_source(datasets[value], base_dir=base_dir)
        return dataclasses.replace(resolved, name=value)

    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise DatasetError(f"dataset source {value!r}: an {scheme} URL needs a host, e.g. https://host/data.zip")
        web: SourceScheme = "https" if scheme == "https" else "http"
        return Source(
            kind="url", value=value, scheme=web, url=value, archive_format=archive_format(unquote(parts.path))
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise DatasetError(
                f"dataset source {value!r}: a file:// URL must name a local absolute path "
                f"(file:///abs/path or file://localhost/abs/path), got host {parts.netloc!r}"
            )
        path = Path(url2pathname(parts.path))
        return _classify_local(path, value, scheme="file")
    if len(scheme) > 1:  # one letter would be a Windows drive ("C:\\data"), handled as a path below
        raise DatasetError(f"dataset source {value!r}: unsupported scheme {scheme!r}; expected {ACCEPTED_FORMS}")

    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base_dir if base_dir is not None else Path.cwd()) / path
    return _classify_local(path, value, scheme="path")


classify = classify_source
"""Short alias of :func:`classify_source`."""


def _classify_local(path: Path, value: str, *, scheme: SourceScheme) -> Source:
    path = Path(os.path.abspath(path))
    if path.is_dir():
        return Source(kind="folder", value=value, scheme=scheme, path=path)
    if path.is_file():
        fmt = archive_format(path.name)
        if fmt is None:
            raise DatasetError(
                f"dataset source {value!r}: {path} is a file but not a known archive "
                f"(.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz); expected {ACCEPTED_FORMS}"
            )
        return Source(kind="archive", value=value, scheme=scheme, path=path, archive_format=fmt)
    if path.exists():
        raise DatasetError(f"dataset source {value!r}: {path} is neither a regular file nor a folder")
    raise DatasetError(f"dataset source {value!r}: {path} does not exist; expected {ACCEPTED_FORMS}")

"""Fetch a dataset source into a local file (or use a local one in place), with one result type for all kinds.

http(s) downloads are streamed to ``<dest>.part`` and renamed to ``<dest>`` only when complete and verified:

* **resume** — an interrupted ``.part`` is continued with ``Range: bytes=N-`` guarded by ``If-Range``; a ``206``
  whose ``Content-Range`` or ETag does not match restarts from zero, a ``200`` restarts from zero, a ``416``
  means the part is already complete (when ``Content-Range: bytes */N`` says N bytes) or restarts it;
* **retries** — connection errors, timeouts, bodies cut short, HTTP 5xx and 429 are retried ``retries`` times with
  exponential backoff (``Retry-After`` honoured, capped); any other 4xx fails at once;
* **sha256 pin** — a finished download whose sha256 differs is removed and raises DatasetError;
* **conditional GET** — the ETag / Last-Modified of a finished download are kept in ``<dest>.fetch.json``; the
  next fetch of the same URL sends ``If-None-Match`` / ``If-Modified-Since`` and a ``304`` reuses the cached file
  (``not_modified=True``). A cached file that matches its sha256 pin is reused without any request.

One process at a time downloads a given ``<dest>`` (an ``flock`` on ``.<name>.lock`` next to it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3

from scene2world.atomic import atomic_write_text, temporary_path
from scene2world.datasets.sources import Source, classify_source
from scene2world.errors import DatasetError
from scene2world.manifest import sha256_file
from scene2world.stopping import check

try:  # POSIX advisory locks; elsewhere concurrent fetches of one file are not guarded
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

ProgressFn = Callable[[int, int | None], None]
"""``progress(bytes_done, bytes_total_or_None)``, called as data arrives."""

PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".fetch.json"
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_RANGE_RE = re.compile(r"^bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)$")


@dataclass(frozen=True)
class FetchResult:
    """Where a fetched source now lies locally, and how it got there.

    ``path``: the local file or folder to read. ``sha256``/``size``: of that file (None for a folder).
    ``downloaded``: bytes came over the network in this call. ``not_modified``: the server answered 304 and the
    cached file was reused. ``resumed``: the download continued an earlier ``.part``. ``in_place``: a local source
    is used where it lies (not copied). ``etag``/``last_modified``: the server's validators (http only).
    ``attempts``: HTTP requests made (0 when nothing was requested).
    """

    path: Path
    source: Source
    sha256: str | None
    size: int | None
    downloaded: bool = False
    not_modified: bool = False
    resumed: bool = False
    in_place: bool = False
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 0


def fetch(
    source: str | Source,
    dest_dir: Path,
    *,
    sha256: str | None = None,
    retries: int = 4,
    timeout_s: float = 60.0,
    progress: ProgressFn | None = None,
    filename: str | None = None,
    copy_local: bool = False,
    backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
    session: requests.Session | None = None,
    datasets: Mapping[str, str] | None = None,
) -> FetchResult:
    """Bring ``source`` to the local disk and return where it is.

    ``source``: a source string (see :func:`classify_source`; ``datasets`` resolves names) or a :class:`Source`.
    ``dest_dir``: folder for downloads (and local copies), created if needed. ``sha256``: expected hex digest of
    the file (archives and downloads only). ``retries``: extra attempts after the first for transient HTTP failures.
    ``timeout_s``: connect and read timeout per request, seconds. ``filename``: name of the downloaded file
    (default: the URL's last path segment). ``copy_local``: copy a local archive into ``dest_dir`` instead of
    using it in place. ``backoff_s``/``max_backoff_s``: first and largest wait between attempts, seconds.
    ``session``: a ``requests.Session`` to use (default: a new one).

    Raises DatasetError when the source cannot be fetched, a 4xx comes back, retries run out, or the sha256
    differs from the pin.
    """
    src = source if isinstance(source, Source) else classify_source(source, datasets=datasets)
    pin = _check_pin(sha256)
    if retries < 0:
        raise DatasetError(f"`retries` must be >= 0, got {retries}")
    dest_dir = Path(dest_dir)
    if src.kind == "url":
        assert src.url is not None  # set by classify_source for http sources
        name = _safe_filename(filename or _filename_from_url(src.url))
        dest_dir.mkdir(parents=True, exist_ok=True)
        with _locked(dest_dir / f".{name}.lock"):
            return _fetch_http(
                src,
                dest_dir / name,
                pin=pin,
                retries=retries,
                timeout_s=timeout_s,
                progress=progress,
                backoff_s=backoff_s,
                max_backoff_s=max_backoff_s,
                session=session,
            )
    return _fetch_local(src, dest_dir, pin=pin, filename=filename, copy_local=copy_local, progress=progress)


# --------------------------------------------------------------------------------------------------- local sources


def _fetch_local(
    src: Source, dest_dir: Path, *, pin: str | None, filename: str | None, copy_local: bool, progress: ProgressFn | None
) -> FetchResult:
    assert src.path is not None  # local sources always carry a path
    if src.kind == "folder":
        if pin is not None:
            raise DatasetError(
                f"dataset source {src.value!r} is a folder; a sha256 pin applies to an archive or a download only"
            )
        return FetchResult(path=src.path, source=src, sha256=None, size=None, in_place=True)
    digest = sha256_file(src.path)
    size = src.path.stat().st_size
    if pin is not None and digest != pin:
        raise DatasetError(f"{src.path}: sha256 {digest} does not match the pinned sha256 {pin}; wrong file or pin?")
    if not copy_local:
        return _finished(src.path, src, digest, progress, in_place=True)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / _safe_filename(filename or src.path.name)
    if dest.resolve() == src.path.resolve():
        return FetchResult(path=dest, source=src, sha256=digest, size=size, in_place=True)
    if not (dest.is_file() and dest.stat().st_size == size and sha256_file(dest) == digest):
        tmp = temporary_path(dest)
        try:
            with open(tmp, "xb") as out, open(src.path, "rb") as inp:
                shutil.copyfileobj(inp, out, _CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return _finished(dest, src, digest, progress)


def _finished(path: Path, src: Source, sha256: str, progress: Any, **extra: Any) -> FetchResult:
    """The result for a file that is complete at ``path``, after reporting full progress."""
    size = path.stat().st_size
    if progress is not None:
        progress(size, size)
    return FetchResult(path=path, source=src, sha256=sha256, size=size, **extra)


# ---------------------------------------------------------------------------------------------------- http sources


class _RetryableError(Exception):
    """A transient failure: the attempt may be repeated after a wait (``retry_after_s`` if the server said)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class _Outcome:
    not_modified: bool
    resumed: bool
    etag: str | None
    last_modified: str | None
    attempts: int


def _fetch_http(
    src: Source,
    dest: Path,
    *,
    pin: str | None,
    retries: int,
    timeout_s: float,
    progress: ProgressFn | None,
    backoff_s: float,
    max_backoff_s: float,
    session: requests.Session | None,
) -> FetchResult:
    url = src.url
    assert url is not None
    part = dest.with_name(dest.name + PART_SUFFIX)
    sidecar = dest.with_name(dest.name + SIDECAR_SUFFIX)
    meta = _read_json(sidecar)
    cached = (
        dest.is_file()
        and meta.get("url") == url
        and meta.get("size") == dest.stat().st_size
        and bool(meta.get("sha256"))
    )
    if cached and pin is not None and meta["sha256"] == pin and sha256_file(dest) == pin:
        return _finished(dest, src, pin, progress, etag=meta.get("etag"), last_modified=meta.get("last_modified"))

    validators: dict[str, str] = {}
    if cached:
        if meta.get("etag"):
            validators["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            validators["If-Modified-Since"] = meta["last_modified"]

    own_session = session is None
    sess = session if session is not None else requests.Session()
    try:
        outcome = _download(
            sess,
            url,
            part,
            validators=validators,
            retries=retries,
            timeout_s=timeout_s,
            progress=progress,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )
        if outcome.not_modified:
            digest = sha256_file(dest)
            if digest != meta["sha256"]:
                # the cached file was altered since it was downloaded: fetch it again, unconditionally
                sidecar.unlink(missing_ok=True)
                outcome = _download(
                    sess,
                    url,
                    part,
                    validators={},
                    retries=retries,
                    timeout_s=timeout_s,
                    progress=progress,
                    backoff_s=backoff_s,
                    max_backoff_s=max_backoff_s,
                )
            else:
                if pin is not None and digest != pin:
                    dest.unlink(missing_ok=True)
                    sidecar.unlink(missing_ok=True)
                    raise DatasetError(
                        f"{url}: sha256 {digest} does not match the pinned sha256 {pin} (server says not modified); "
                        f"the cached {dest.name} was removed"
                    )
                return _finished(
                    dest,
                    src,
                    digest,
                    progress,
                    not_modified=True,
                    etag=outcome.etag or meta.get("etag"),
                    last_modified=outcome.last_modified or meta.get("last_modified"),
                    attempts=outcome.attempts,
                )
    finally:
        if own_session:
            sess.close()

    digest = sha256_file(part)
    if pin is not None and digest != pin:
        part.unlink(missing_ok=True)
        _part_meta(part).unlink(missing_ok=True)
        raise DatasetError(
            f"{url}: downloaded sha256 {digest} does not match the pinned sha256 {pin}; the download was removed "
            "(check the pin, or whether the file on the server changed)"
        )
    size = part.stat().st_size
    sidecar.unlink(missing_ok=True)
    os.replace(part, dest)
    _part_meta(part).unlink(missing_ok=True)
    record = {
        "url": url,
        "etag": outcome.etag,
        "last_modified": outcome.last_modified,
        "sha256": digest,
        "size": size,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(sidecar, json.dumps(record, indent=2) + "\n")
    return FetchResult(
        path=dest,
        source=src,
        sha256=digest,
        size=size,
        downloaded=True,
        resumed=outcome.resumed,
        etag=outcome.etag,
        last_modified=outcome.last_modified,
        attempts=outcome.attempts,
    )


def _download(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    validators: dict[str, str],
    retries: int,
    timeout_s: float,
    progress: ProgressFn | None,
    backoff_s: float,
    max_backoff_s: float,
) -> _Outcome:
    """Bring ``part`` to the complete body of ``url`` (or learn it is not modified), retrying transient failures."""
    attempt = 0
    while True:
        attempt += 1
        try:
            not_modified, did_resume, etag, last_modified = _attempt(
                session, url, part, validators=validators, timeout_s=timeout_s, progress=progress
            )
            return _Outcome(not_modified, did_resume, etag, last_modified, attempt)
        except _RetryableError as e:
            if attempt > retries:
                kept = f"; {part.stat().st_size} bytes kept in {part} for the next try" if part.exists() else ""
                raise DatasetError(f"{url}: download failed after {attempt} attempt(s): {e}{kept}") from e
            wait = min(backoff_s * 2 ** (attempt - 1), max_backoff_s)
            if e.retry_after_s is not None:
                wait = min(max(wait, e.retry_after_s), max_backoff_s)
            time.sleep(wait)


def _attempt(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    validators: dict[str, str],
    timeout_s: float,
    progress: ProgressFn | None,
) -> tuple[bool, bool, str | None, str | None]:
    """One request. Returns (not_modified, resumed, etag, last_modified); raises _RetryableError or DatasetError."""
    part_meta = _read_json(_part_meta(part))
    offset = 0
    if part.is_file() and part_meta.get("url") == url:
        offset = part.stat().st_size
    else:
        part.unlink(missing_ok=True)
        _part_meta(part).unlink(missing_ok=True)
        part_meta = {}

    headers = {"Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        strong_etag = part_meta.get("etag") if not str(part_meta.get("etag") or "").startswith("W/") else None
        if strong_etag:
            headers["If-Range"] = strong_etag
        elif part_meta.get("last_modified"):
            headers["If-Range"] = part_meta["last_modified"]
    else:
        headers.update(validators)

    try:
        with session.get(url, headers=headers, stream=True, timeout=(timeout_s, timeout_s)) as resp:
            status = resp.status_code
            etag = resp.headers.get("ETag")
            last_modified = resp.headers.get("Last-Modified")
            if status == 304 and validators and offset == 0:
                return True, False, etag, last_modified
            if status == 416 and offset > 0:
                total = _parse_content_range(resp.headers.get("Content-Range", ""))[2]
                if total == offset:
                    return False, True, part_meta.get("etag"), part_meta.get("last_modified")
                _restart(part)
                raise _RetryableError(f"HTTP 416 for a resume at byte {offset} (server size {total}); restarting")
            if status == 429 or status >= 500:
                raise _RetryableError(f"HTTP {status} {resp.reason}", _retry_after_s(resp.headers.get("Retry-After")))
            if status >= 400 or status not in (200, 206):
                raise DatasetError(
                    f"{url}: HTTP {status} {resp.reason}; not retried (check the URL and that it is public)"
                )

            resumed = False
            if status == 206:
                start, _end, total = _parse_content_range(resp.headers.get("Content-Range", ""))
                same_entity = not (etag and part_meta.get("etag") and etag != part_meta.get("etag"))
                if start != offset or not same_entity:
                    _restart(part)
                    raise _RetryableError(
                        f"HTTP 206 with Content-Range {resp.headers.get('Content-Range')!r} "
                        f"does not continue byte {offset} of the same file; restarting"
                    )
                resumed = offset > 0
                mode = "ab"
            else:  # 200: the whole body, from byte 0
                offset, total, mode = 0, None, "wb"
            if offset == 0:
                atomic_write_text(
                    _part_meta(part),
                    json.dumps({"url": url, "etag": etag, "last_modified": last_modified}) + "\n",
                )
            encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            length = resp.headers.get("Content-Length")
            expected = None
            if not encoded and length is not None and length.isdigit():
                expected = offset + int(length)
            elif total is not None:
                expected = total
            if etag is None and status == 206:
                etag, last_modified = part_meta.get("etag"), part_meta.get("last_modified")

            done = offset
            with open(part, mode) as fh:
                # read1 hands over what has arrived, so bytes received before a cut are kept for the resume
                while chunk := resp.raw.read1(_CHUNK, decode_content=True):
                    check()  # a stop signal whose exception was swallowed still stops the download
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, expected)
                fh.flush()
                os.fsync(fh.fileno())
            if expected is not None and done != expected:
                raise _RetryableError(f"body ended at byte {done} of {expected}")
            return False, resumed, etag, last_modified
    except (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.HTTPError,
    ) as e:
        raise _RetryableError(f"{type(e).__name__}: {e}") from e
    except requests.RequestException as e:
        raise DatasetError(f"{url}: request failed: {e}") from e
    except OSError as e:  # the local side: disk full, permissions
        raise DatasetError(f"{part}: cannot write the download: {e}") from e


def _restart(part: Path) -> None:
    part.unlink(missing_ok=True)
    _part_meta(part).unlink(missing_ok=True)


def _part_meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _parse_content_range(value: str) -> tuple[int | None, int | None, int | None]:
    """``bytes 10-99/100`` → (10, 99, 100); ``bytes */100`` → (None, None, 100); unparsable → all None."""
    m = _CONTENT_RANGE_RE.match(value.strip())
    if not m:
        return None, None, None
    start, end, total = m.groups()
    return (
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        int(total) if total not in (None, "*") else None,
    )


def _retry_after_s(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# ------------------------------------------------------------------------------------------------------- helpers


def _check_pin(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    pin = sha256.strip().lower()
    if not _SHA256_RE.match(pin):
        raise DatasetError(f"sha256 pin {sha256!r} is not 64 hex digits")
    return pin


def _filename_from_url(url: str) -> str:
    return PurePosixPath(unquote(urlsplit(url).path)).name or "download"


def _safe_filename(name: str) -> str:
    """``name`` with anything but letters, digits, ``.``, ``_``, ``-`` replaced by ``_``; never hidden or empty."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return cleaned or "download"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

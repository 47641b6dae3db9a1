"""Checking a packaged run folder against its manifest (``scene2world verify RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path

from scene2world.contracts import PackageData
from scene2world.errors import CacheError
from scene2world.manifest import MANIFEST_NAME, payload, read_manifest, sha256_file, verify_files
from scene2world.packaging.archive import checksum_path


def verify_run(run_dir: Path, *, check_hash: bool = True) -> list[str]:
    """Problems with a run folder, one line each; an empty list means it is intact.

    Reported: an unreadable or missing ``manifest.json``; listed files that are missing or whose size or sha256
    changed; files present but not listed; and, when the manifest names an archive, an archive or
    ``.sha256`` file missing beside the folder, or an archive whose sha256 changed.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return [f"{run_dir}: not a folder"]
    try:
        manifest = read_manifest(run_dir / MANIFEST_NAME)
    except CacheError as e:
        return [f"{MANIFEST_NAME}: {e}"]
    problems = []
    archive = None
    if manifest.step != "package":
        problems.append(f"{MANIFEST_NAME}: written by the `{manifest.step}` step, not by `package`")
    else:
        try:
            archive = payload(manifest, PackageData).archive
        except CacheError as e:
            problems.append(f"{MANIFEST_NAME}: {e}")
    problems.extend(verify_files(run_dir, manifest, check_hash=check_hash))
    listed = {rec.path for rec in manifest.files} | {MANIFEST_NAME}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if (path.is_file() or path.is_symlink()) and rel not in listed:
            problems.append(f"{rel}: not listed in {MANIFEST_NAME}")
    if archive is not None:
        problems.extend(_verify_archive(run_dir.parent / Path(archive.path).name, check_hash=check_hash))
    return problems


def _verify_archive(archive: Path, *, check_hash: bool) -> list[str]:
    sums = checksum_path(archive)
    if not archive.is_file():
        return [f"{archive.name}: the run's archive is missing beside the folder ({archive})"]
    if not sums.is_file():
        return [f"{sums.name}: the archive's checksum file is missing beside the folder ({sums})"]
    if not check_hash:
        return []
    expected = sums.read_text(encoding="utf-8").split()[:1]
    if not expected or sha256_file(archive) != expected[0]:
        return [f"{archive.name}: sha256 does not match {sums.name}"]
    return []

"""Files and folders published whole: atomic writes, folder swaps, link-or-copy."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from scene2world.atomic import (
    atomic_write_bytes,
    atomic_write_text,
    link_or_copy,
    replace_folder,
    temporaries_of,
    temporary_path,
)


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second ✓")
    assert path.read_text(encoding="utf-8") == "second ✓"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # the umask's mode, like any new file
    assert temporaries_of(path) == [] and sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.bin"
    atomic_write_bytes(path, b"old")
    # a real write error half-way: a 10-byte file-size limit in a child process (EFBIG)
    code = textwrap.dedent(
        f"""
        import resource, signal, sys
        from scene2world.atomic import atomic_write_bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10, 10))
        try:
            atomic_write_bytes({str(path)!r}, b"new" * 100)
        except OSError as e:
            sys.exit(3 if e.errno == errno.EFBIG else 4)
        """
    ).replace("import resource", "import errno, resource")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 3
    assert path.read_bytes() == b"old" and temporaries_of(path) == []


def test_replace_folder_swaps_a_folder_or_a_file(tmp_path):
    final = tmp_path / "out"
    for old in ("folder", "file"):
        if old == "folder":
            (final / "old").mkdir(parents=True)
            (final / "old" / "x").write_text("old")
        else:
            final.write_text("a file in the way")
        new = temporary_path(final)
        new.mkdir()
        (new / "y").write_text("new")
        assert replace_folder(new, final) == final
        assert [p.name for p in final.iterdir()] == ["y"] and not new.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the trash is gone too
        replace_folder(final, tmp_path / "gone")  # to an absent name: a plain rename
        (tmp_path / "gone" / "y").unlink()
        (tmp_path / "gone").rmdir()


def test_replace_folder_puts_the_old_one_back_when_the_new_one_cannot_move(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "keep").write_text("old")
    with pytest.raises(FileNotFoundError):
        replace_folder(tmp_path / "missing", final)
    assert (final / "keep").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_link_or_copy_links_on_one_filesystem_and_raises_real_errors(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    assert link_or_copy(src, tmp_path / "deep" / "dst.bin") == "link"
    assert os.path.samefile(src, tmp_path / "deep" / "dst.bin")
    with pytest.raises(FileExistsError):  # never overwrites
        link_or_copy(src, tmp_path / "deep" / "dst.bin")
    with pytest.raises(FileNotFoundError):
        link_or_copy(tmp_path / "absent", tmp_path / "x")


def test_link_or_copy_copies_across_filesystems(tmp_path):
    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    src.chmod(0o444)
    dst = temporary_path(os.path.join(other, f"s2w-test-{os.getpid()}.bin"))
    try:
        assert link_or_copy(src, dst) == "copy" and dst.read_bytes() == b"data"
        assert stat.S_IMODE(dst.stat().st_mode) == 0o444  # copy2 keeps the mode
    finally:
        dst.unlink(missing_ok=True)

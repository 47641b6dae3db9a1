import os

import pytest

from scene2world import cache
from scene2world.errors import CacheError
from scene2world.manifest import Manifest, read_manifest, record_tree, write_manifest


def _build(out_dir, key, payload=b"hello", fail=False):
    with cache.staging(out_dir) as tmp:
        (tmp / "a").mkdir()
        (tmp / "a" / "x.bin").write_bytes(payload)
        if fail:
            raise RuntimeError("boom midway")
        write_manifest(tmp, Manifest(step="render", step_version="1", cache_key=key, files=record_tree(tmp)))
        return cache.publish(tmp, out_dir, key)


def test_key_is_content_addressed():
    a = cache.step_key("render", "1", settings={"msaa": 4}, content="abc")
    assert a == cache.step_key("render", "1", content="abc", settings={"msaa": 4})
    assert a != cache.step_key("render", "1", settings={"msaa": 1}, content="abc")
    assert a != cache.step_key("render", "2", settings={"msaa": 4}, content="abc")


def test_hit_after_publish(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64)
    assert cache.lookup(out, "k" * 64) is not None
    assert cache.lookup(out, "j" * 64) is None


def test_changed_byte_is_a_miss(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64)
    (out / "a" / "x.bin").write_bytes(b"hellO")
    assert cache.lookup(out, "k" * 64) is None


def test_deleted_output_is_a_miss(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64)
    os.remove(out / "a" / "x.bin")
    assert cache.lookup(out, "k" * 64) is None


def test_failure_midway_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        _build(out, "k" * 64, fail=True)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_republish_replaces_a_stale_output(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64, payload=b"old")
    (out / "a" / "x.bin").write_bytes(b"corrupt")
    _build(out, "k" * 64, payload=b"new")
    assert (out / "a" / "x.bin").read_bytes() == b"new"
    assert cache.lookup(out, "k" * 64) is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_concurrent_publish_keeps_the_winner(tmp_path):
    out = tmp_path / "out"
    first = _build(out, "k" * 64)
    again = _build(out, "k" * 64)
    assert again.cache_key == first.cache_key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_overwrite_user_files(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("do not delete")
    with pytest.raises(CacheError, match=r"not a scene2world output .*precious"):
        _build(out, "k" * 64)
    assert (out / "precious.txt").read_text() == "do not delete"


def test_unreadable_manifest_is_a_miss(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64)
    (out / "manifest.json").write_text("{not json")
    assert cache.lookup(out, "k" * 64) is None
    with pytest.raises(CacheError, match="not a valid scene2world manifest"):
        read_manifest(out)


def test_a_foreign_manifest_does_not_make_a_folder_ours(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "app"}')
    (out / "thesis.txt").write_text("x")
    with pytest.raises(CacheError, match=r"d: not a scene2world output .*manifest\.json"):
        _build(out, "k" * 64)
    assert (out / "thesis.txt").read_text() == "x"
    assert (out / "manifest.json").read_text() == '{"name": "app"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_an_output_holding_a_users_file_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64, payload=b"old")
    (out / "a" / "notes.txt").write_text("mine")
    with pytest.raises(CacheError, match=r"'a/notes\.txt'"):
        _build(out, "j" * 64, payload=b"new")
    assert (out / "a" / "notes.txt").read_text() == "mine"
    assert (out / "a" / "x.bin").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_damaged_output_of_ours_is_still_replaced(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64, payload=b"old")
    os.remove(out / "a" / "x.bin")
    _build(out, "j" * 64, payload=b"new")
    assert (out / "a" / "x.bin").read_bytes() == b"new"


def test_published_files_are_read_only_and_still_replaceable(tmp_path):
    out = tmp_path / "out"
    _build(out, "k" * 64, payload=b"old")
    linked = tmp_path / "elsewhere.bin"
    os.link(out / "a" / "x.bin", linked)  # what a later step does with an upstream file
    for path in (out / "a" / "x.bin", out / "manifest.json", linked):
        assert path.stat().st_mode & 0o222 == 0, path
    _build(out, "j" * 64, payload=b"new")
    assert (out / "a" / "x.bin").read_bytes() == b"new"
    assert linked.read_bytes() == b"old"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and mount(8); skipped where either is missing)."""
    import subprocess

    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_one_line_naming_the_path_and_keeps_nothing(tiny_disk):
    out = tiny_disk / "infer" / "k"
    full = pytest.raises(CacheError, match=r"/infer/k: No space left on device; nothing was published")
    with full, cache.staging(out) as tmp, open(tmp / "big.bin", "wb") as fh:
        fh.write(b"x" * (1 << 20))
    assert not out.exists()
    assert not [p for p in (tiny_disk / "infer").iterdir()]


def test_a_users_file_linked_into_an_output_keeps_its_mode(tmp_path):
    users = tmp_path / "dataset.bin"
    users.write_bytes(b"user data")
    users.chmod(0o644)
    out = tmp_path / "out"
    with cache.staging(out) as tmp:
        cache.link_or_copy(users, tmp / "dataset.bin")
        write_manifest(tmp, Manifest(step="download", step_version="1", cache_key="k" * 64, files=record_tree(tmp)))
        cache.publish(tmp, out, "k" * 64)
    assert users.stat().st_mode & 0o777 == 0o644
    assert (out / "manifest.json").stat().st_mode & 0o222 == 0

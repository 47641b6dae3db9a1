"""The step contracts (scene2world/contracts.py): every manifest a real run writes reads back into its
model and dumps to the same bytes, and a manifest with a field of the wrong type is one line naming the
file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scene2world.config import DownloadConfig, PackageConfig, RenderConfig
from scene2world.contracts import (
    DownloadData,
    InferData,
    PackageData,
    Payload,
    RenderData,
    SampleCacheData,
    dump,
)
from scene2world.errors import CacheError
from scene2world.manifest import MANIFEST_NAME, payload, read_manifest
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.timeout(300)

MODELS: dict[str, type[Payload]] = {
    "download": DownloadData,
    "render": RenderData,
    "infer": InferData,
    "package": PackageData,
}


def assert_round_trips(path: Path, model: type[Payload] | None = None) -> Payload:
    """``path`` (a manifest file or its folder) read, its payload validated by its step's model and
    written back gives the same bytes; returns the payload."""
    path = Path(path)
    path = path / MANIFEST_NAME if path.is_dir() else path
    manifest = read_manifest(path)
    data = payload(manifest, model or MODELS[manifest.step])
    rebuilt = manifest.model_copy(update={"data": dump(data)})
    assert rebuilt.model_dump_json(indent=2) + "\n" == path.read_text(encoding="utf-8"), path
    assert rebuilt.digest() == manifest.digest()
    return data


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The bundled example downloaded, two frames of one camera rendered, packaged without inference."""
    from scene2world.datasets.step import run_download
    from scene2world.packaging.run_folder import package_run
    from scene2world.renderer.step import resolve_input, run_render

    data = tmp_path_factory.mktemp("data")
    download = run_download(DownloadConfig(source=str(EXAMPLE)), datasets={}, data_root=data)
    cfg = RenderConfig(cameras=["camera_front_wide_120fov"], frames="0:2", msaa=1, preset="ultrafast")
    render = run_render(cfg, resolve_input(download.manifest_path), data_root=data)
    run = package_run(render.out_dir, None, data / "run", PackageConfig(archive="zip"), {"name": "contracts"})
    return download, render, data / "run", run


def test_manifests_of_a_real_run_round_trip_byte_for_byte(small_run):
    download, render, run_dir, _ = small_run
    got = assert_round_trips(download.manifest_path)
    assert isinstance(got, DownloadData) and got.clips and got.source_kind == "folder"
    rendered = assert_round_trips(render.manifest_path)
    assert isinstance(rendered, RenderData)
    (clip,) = rendered.clips.values()
    assert clip.num_frames == 2 and clip.rendered == ["camera_front_wide_120fov"] and clip.reused == []
    packaged = assert_round_trips(run_dir)
    assert isinstance(packaged, PackageData) and packaged.archive is not None and packaged.inputs.infer is None
    camera_cache = next((render.out_dir.parent.parent / "render-cameras").iterdir())
    assert read_manifest(camera_cache).data == {}  # the per-camera cache carries files only


def test_fields_absent_from_older_manifests_stay_absent(small_run):
    _, render, _, _ = small_run
    manifest = read_manifest(render.manifest_path)
    for clip in manifest.data["clips"].values():  # as written before the render step recorded reuse
        del clip["rendered"], clip["reused"]
    data = payload(manifest, RenderData)
    assert all(c.rendered is None for c in data.clips.values())
    assert dump(data) == manifest.data


@pytest.mark.parametrize(
    ("step", "edit", "field", "found"),
    [
        ("render", lambda d: next(iter(d["clips"].values())).update(num_frames="2"), "num_frames", "'2'"),
        ("render", lambda d: next(iter(d["clips"].values())).update(cameras=["a.mp4"]), "cameras", "['a.mp4']"),
        ("download", lambda d: d["clips"][0].update(path=None), "data.clips.0.path", "None"),
        ("download", lambda d: d.update(extra=1), "data.extra", "1"),
        ("package", lambda d: d.update(archive={"path": "x.rar", "format": "rar"}), "data.archive.format", "'rar'"),
    ],
)
def test_a_tampered_manifest_is_one_line_naming_file_and_field(small_run, tmp_path, step, edit, field, found):
    download, render, run_dir, _ = small_run
    source = {"download": download.manifest_path, "render": render.manifest_path, "package": run_dir}[step]
    path = tmp_path / MANIFEST_NAME
    text = Path(source if Path(source).is_file() else Path(source) / MANIFEST_NAME).read_text(encoding="utf-8")
    doc = json.loads(text)
    edit(doc["data"])
    path.write_text(json.dumps(doc), encoding="utf-8")
    manifest = read_manifest(path)  # the envelope is fine; the step's payload is not
    with pytest.raises(CacheError) as info:
        payload(manifest, MODELS[step])
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: `data.")
    assert field in message and f"(found {found})" in message and f"run the {step} step again" in message


def test_a_manifest_of_another_step_is_refused_by_name(small_run):
    download, _, _, _ = small_run
    with pytest.raises(CacheError, match=r"manifest\.json: a `download` manifest where a `render` one is needed"):
        payload(read_manifest(download.manifest_path), RenderData)


def test_the_renderer_reads_a_tampered_download_manifest_as_one_line(small_run, tmp_path):
    from scene2world.renderer.step import resolve_input

    download, _, _, _ = small_run
    folder = tmp_path / "download"
    folder.mkdir()
    doc = json.loads(download.manifest_path.read_text(encoding="utf-8"))
    doc["data"]["clips"][0]["clip_id"] = 7
    (folder / MANIFEST_NAME).write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CacheError, match=r"download/manifest\.json: `data\.clips\.0\.clip_id`: .* \(found 7\)"):
        resolve_input(folder)


def check_infer_outputs(infer_dir: Path, sample_dirs: list[Path], run_dir: Path) -> None:
    """Round trips of an infer output, its per-sample cache entries and a run folder built from it
    (used by the inference tests, which make them)."""
    data = assert_round_trips(infer_dir)
    assert isinstance(data, InferData) and data.samples
    for folder in sample_dirs:
        assert_round_trips(folder, SampleCacheData)
    packaged = assert_round_trips(run_dir)
    assert isinstance(packaged, PackageData) and set(packaged.samples) == set(data.samples)

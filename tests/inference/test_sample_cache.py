"""Per-sample inference cache on the bundled example: 3 prompt variants x 2 seeds in one torchrun launch
(preview engine, 2 gloo ranks), then one variant's text changed re-infers exactly its 2 samples. Every
spec file written on the way (step cache, sample cache, run folder) loads with NVIDIA's rules from where
it lies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scene2world.config import DownloadConfig, InferConfig, PackageConfig, RenderConfig
from scene2world.datasets.step import run_download
from scene2world.inference.spec import load_spec
from scene2world.inference.step import SAMPLE_CACHE, run_infer
from scene2world.manifest import read_manifest
from scene2world.packaging.run_folder import package_run
from scene2world.renderer.step import resolve_input, run_render
from tests.conftest import EXAMPLE
from tests.test_contracts import check_infer_outputs

pytestmark = pytest.mark.timeout(600)

PROMPTS = {"sunny": "A sunny highway.", "rainy night": "A rainy night in the city.", "fog": "Thick fog at dawn."}
SEEDS = [7, 8]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    download = run_download(DownloadConfig(source=str(EXAMPLE)), datasets={}, data_root=data)
    render_cfg = RenderConfig(cameras=["camera_front_wide_120fov"], frames="0:29", msaa=1, preset="ultrafast")
    render = run_render(render_cfg, resolve_input(download.manifest_path), data_root=data)
    return data, render


def _cfg(prompts):
    return InferConfig(
        engine="preview",
        nproc_per_node=2,
        backend="gloo",
        save_combined_views=True,
        fps=30,  # 29 control frames make a chunk: a short render
        prompts=prompts,
        seeds=SEEDS,
        timeout_s=500,
    )


def _assert_loads_in_place(path: Path) -> None:
    samples = load_spec(path)  # NVIDIA's rules: paths from the file's own folder, files must exist
    for s in samples:
        assert s.front_wide.control_path is not None and s.front_wide.control_path.is_file()


def test_variants_times_seeds_in_one_launch_then_one_variant_changed(rendered, tmp_path):
    data, render = rendered
    clip = next(iter(render.manifest.data["clips"]))
    first = run_infer(_cfg(PROMPTS), render.out_dir, data_root=data)
    m = first.manifest
    expected = {f"{clip}.{v}.{s}" for v in ("sunny", "rainy_night", "fog") for s in SEEDS}
    assert set(m.data["samples"]) == expected
    assert m.stats == {"inferred_samples": 6, "reused_samples": 0, "launches": 1}
    assert [p for p in m.data["logs"] if p.endswith("torchrun.log")] == ["logs/torchrun.log"]  # one launch
    entry = m.data["samples"][f"{clip}.rainy_night.8"]
    assert entry["clip_id"] == clip and entry["variant"] == "rainy_night" and entry["variant_label"] == "rainy night"
    assert entry["seed"] == 8 and entry["reused"] is False and entry["prompt"] == PROMPTS["rainy night"]
    assert entry["combined"] == f"outputs/{clip}.rainy_night.8.mp4"
    assert len({e["key"] for e in m.data["samples"].values()}) == 6

    dump = json.loads((first.out_dir / entry["json"]).read_text())
    assert dump["seed"] == 8 and dump["prompt"] == PROMPTS["rainy night"]
    assert dump["front_wide"]["control_path"] == f"../controls/{clip}/{clip}.camera_front_wide_120fov.mp4"
    # every spec file of the step and of the sample cache loads unchanged from where it lies
    _assert_loads_in_place(first.out_dir / m.data["spec"])
    assert len(load_spec(first.out_dir / m.data["spec"])) == 6
    for e in m.data["samples"].values():
        _assert_loads_in_place(first.out_dir / e["json"])
        for dump_path in (data / SAMPLE_CACHE / e["key"][:20] / "outputs").glob("*.json"):
            _assert_loads_in_place(dump_path)

    # the run folder: names <clip>.<variant>.<seed>, spec and dumps loadable in place
    run_dir = tmp_path / "run"
    run = package_run(render.out_dir, first.out_dir, run_dir, PackageConfig(archive="none", contact_sheet=False))
    assert set(run.data["samples"]) == expected
    assert {p.name for p in (run_dir / "generated").iterdir()} == expected
    for spec in run.data["spec"]:
        _assert_loads_in_place(run_dir / spec)
    for name, e in run.data["samples"].items():
        assert e["json"] == f"generated/{name}/{name}.json" and e["seed"] in SEEDS
        _assert_loads_in_place(run_dir / e["json"])
    # every manifest written on the way reads back into its contract and dumps to the same bytes
    check_infer_outputs(
        first.out_dir, [data / SAMPLE_CACHE / e["key"][:20] for e in m.data["samples"].values()], run_dir
    )

    # one variant's text changed: exactly its two samples are inferred, in one launch
    changed = {**PROMPTS, "fog": "Thick fog at dusk."}
    second = run_infer(_cfg(changed), render.out_dir, data_root=data)
    assert second.out_dir != first.out_dir and not second.cache_hit
    assert second.manifest.stats == {"inferred_samples": 2, "reused_samples": 4, "launches": 1}
    inferred = {n for n, e in second.manifest.data["samples"].items() if not e["reused"]}
    assert inferred == {f"{clip}.fog.7", f"{clip}.fog.8"}
    reused = second.manifest.data["samples"][f"{clip}.sunny.7"]
    assert reused["key"] == m.data["samples"][f"{clip}.sunny.7"]["key"]
    assert (second.out_dir / reused["combined"]).read_bytes() == (first.out_dir / reused["combined"]).read_bytes()
    _assert_loads_in_place(second.out_dir / second.manifest.data["spec"])

    # nothing changed: a step cache hit, nothing launched
    third = run_infer(_cfg(changed), render.out_dir, data_root=data)
    assert third.cache_hit and third.out_dir == second.out_dir
    assert read_manifest(third.out_dir).stats["inferred_samples"] == 2


def test_failed_launch_publishes_nothing_and_keeps_its_logs(rendered, tmp_path):
    from scene2world.config import CosmosEngineConfig
    from scene2world.errors import InferenceError

    from .fake_cosmos import make_checkout

    data, render = rendered
    repo = make_checkout(tmp_path / "cosmos-transfer2.5")
    cfg = _cfg({"ok": "A clear day.", "bad": "please BLOCK this"}).model_copy(
        update={"engine": "cosmos", "nproc_per_node": 1, "cosmos": CosmosEngineConfig(repo_dir=repo)}
    )
    samples_before = set((data / SAMPLE_CACHE).iterdir())
    with pytest.raises(InferenceError, match=r"^a guardrail blocked a sample: .*Prompt: please BLOCK this") as info:
        run_infer(cfg, render.out_dir, data_root=data)
    kept = Path(str(info.value).rsplit("left in ", 1)[1].rstrip(")"))
    assert kept.name == "launch" and kept.parent.parent == data / "failed" and kept.parent.name.startswith("infer-")
    assert (kept / "logs" / "torchrun.log").is_file()
    assert set((data / SAMPLE_CACHE).iterdir()) == samples_before  # no sample of the failed launch was stored
    assert not [p for p in (data / "infer").iterdir() if p.name.startswith(".")]  # no staging left

"""Samples from prompt variants x seeds: the dataset's prompts/<clip>.json and captions (carried by the
download step), the config's `infer.prompts` with `{caption}`, names `<clip>.<variant>.<seed>`, and keys."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scene2world.config import InferConfig, load_config
from scene2world.contracts import RenderData, RenderedClip, dump
from scene2world.datasets.step import run_download
from scene2world.errors import ConfigError, InferenceError, SceneError
from scene2world.inference.samples import build_requests, sample_key
from scene2world.inference.step import sample_requests
from scene2world.manifest import FileRecord, Manifest, UpstreamRef
from scene2world.scene.prompts import find_clip_text

pytestmark = pytest.mark.timeout(120)

CDD = Path(__file__).resolve().parents[1] / "data" / "cdd_rdshq_example"
CLIP = "2d23a1f4-c269-46aa-8e7d-1bb595d1e421_2445376400000_2445396400000"
CAMERAS = ("camera_front_wide_120fov", "camera_cross_left_120fov")


@pytest.fixture(scope="module")
def cdd_download(tmp_path_factory):
    from scene2world.config import DownloadConfig

    return run_download(DownloadConfig(source=str(CDD)), datasets={}, data_root=tmp_path_factory.mktemp("data"))


def _render_manifest(download, sha="a" * 64) -> Manifest:
    """A render manifest of the CDD clip (two cameras) whose upstream is the real download output."""
    cameras = {cam: f"{CLIP}/{CLIP}.{cam}.mp4" for cam in CAMERAS}
    return Manifest(
        step="render",
        step_version="1",
        cache_key="r" * 64,
        files=[FileRecord(path=rel, size=1, sha256=sha) for rel in cameras.values()],
        upstream=UpstreamRef(
            step="download",
            cache_key=download.manifest.cache_key,
            digest=download.manifest.digest(),
            manifest_path=str(download.manifest_path),
        ),
        data=dump(
            RenderData(clips={CLIP: RenderedClip(cameras=cameras, num_frames=300, frames=(0, 300), format="rdshq")})
        ),
    )


def test_download_carries_the_datasets_prompts_and_caption(cdd_download):
    (clip,) = cdd_download.manifest.data["clips"]
    assert clip["clip_id"] == CLIP and list(clip["prompts"])[:3] == ["Original", "Golden hour", "Morning"]
    assert len(clip["prompts"]) == 8 and clip["caption"].startswith("The video shows a highway scene")


def test_a_clip_with_dataset_variants_gives_one_sample_per_variant(cdd_download):
    requests = sample_requests(InferConfig(), _render_manifest(cdd_download))
    assert len(requests) == 8
    assert {r.name for r in requests} >= {f"{CLIP}.Golden_hour.0", f"{CLIP}.Night.0", f"{CLIP}.Original.0"}
    golden = next(r for r in requests if r.variant == "Golden_hour")
    assert golden.variant_label == "Golden hour" and golden.prompt_source == "dataset"
    assert golden.prompt.startswith("The video captures a highway scene during golden hour")
    assert len({tuple(sorted(r.controls.items())) for r in requests}) == 1  # one set of controls for all 8


def test_config_prompts_override_the_dataset_with_caption_and_seeds(cdd_download):
    cfg = InferConfig(prompts={"plain": "{caption}", "night": "{caption} Now it is night."}, seeds=[1, 2])
    requests = sample_requests(cfg, _render_manifest(cdd_download))
    assert [r.name for r in requests] == [f"{CLIP}.night.1", f"{CLIP}.night.2", f"{CLIP}.plain.1", f"{CLIP}.plain.2"]
    night = requests[0]
    assert night.prompt.startswith("The video shows a highway scene") and night.prompt.endswith(" Now it is night.")
    assert night.prompt_source == "config" and night.seed == 1


def test_default_variant_and_caption_errors():
    clips = {"c1": {"cameras": {CAMERAS[0]: "c1/a.mp4"}}}
    shas = {"c1/a.mp4": "b" * 64}
    (only,) = build_requests(InferConfig(seed=5), clips, shas)
    assert only.name == "c1.default.5" and only.prompt == InferConfig().prompt
    with pytest.raises(InferenceError, match=r"`infer.prompt` uses \{caption\} but clip 'c1' has no caption"):
        build_requests(InferConfig(prompt="{caption}, at night"), clips, shas)
    with pytest.raises(InferenceError, match=r"variants 'a b' and 'a_b' both give the sample name 'c1.a_b.0'"):
        build_requests(InferConfig(prompts={"a b": "x", "a_b": "y"}), clips, shas)
    with pytest.raises(InferenceError, match=r"re-run the render step"):
        build_requests(InferConfig(), clips, {})


def test_sample_key_covers_what_shapes_the_output_only():
    clips = {"c1": {"cameras": {CAMERAS[0]: "c1/a.mp4"}}}
    base = InferConfig(prompts={"v": "text"})
    (r,) = build_requests(base, clips, {"c1/a.mp4": "b" * 64})
    key = sample_key(base, r)
    assert sample_key(base.model_copy(update={"nproc_per_node": 8, "timeout_s": 5, "backend": "gloo"}), r) == key
    assert sample_key(base.model_copy(update={"num_steps": 20}), r) != key
    (other_prompt,) = build_requests(InferConfig(prompts={"v": "other"}), clips, {"c1/a.mp4": "b" * 64})
    (other_video,) = build_requests(base, clips, {"c1/a.mp4": "c" * 64})
    assert len({key, sample_key(base, other_prompt), sample_key(base, other_video)}) == 3


def test_bad_prompt_files_and_seed_settings(tmp_path):
    shutil.copytree(CDD / "clip" / "captions", tmp_path / "clip" / "captions")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / f"{CLIP}.json").write_text('["not", "an", "object"]')
    with pytest.raises(SceneError, match=rf"prompts/{CLIP}\.json: expected a non-empty JSON object"):
        find_clip_text(tmp_path / "clip", CLIP)
    with pytest.raises(ConfigError, match=r"infer.seeds.*seeds must be distinct"):
        load_config(None, ["infer.seeds=[1, 1]"])
    with pytest.raises(ConfigError, match=r"infer.seed.*less than or equal to 4294967295"):
        load_config(None, ["infer.seed=4294967296"])

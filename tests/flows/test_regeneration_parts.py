"""The plain parts behind the flows: parameter merging, the pull step, prefect.yaml, clip digests,
the last-generation record and the change report (no Prefect server; milliseconds each)."""

from __future__ import annotations

import os

import pytest
import yaml

from scene2world.config import RenderConfig
from scene2world.contracts import (
    DownloadData,
    DownloadedClip,
    InferData,
    InferredSample,
    RenderData,
    RenderedClip,
    dump,
)
from scene2world.errors import ConfigError
from scene2world.flows.checkout import enter_checkout
from scene2world.flows.params import resolve_config
from scene2world.flows.serving import read_deployments
from scene2world.manifest import FileRecord, Manifest
from scene2world.regeneration import diff
from scene2world.regeneration.state import Generation, read_generation, state_path, write_generation
from tests.conftest import REPO


def test_parameters_override_the_config_file_key_by_key():
    cfg = resolve_config(
        REPO / "configs" / "default.yaml", name="x", render=RenderConfig.model_validate({"frames": "0:30"})
    )
    assert cfg.name == "x" and cfg.render.frames == "0:30"
    assert cfg.render.msaa == 4 and cfg.infer.prompt.startswith("A sunny afternoon")  # kept from the file
    with pytest.raises(ConfigError, match=r"render\.msaa"):
        resolve_config(None, render={"msaa": 3})


def test_pull_step_enters_the_checkout_and_refuses_other_folders(tmp_path):
    here = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert enter_checkout(None) == {"directory": str(REPO)}  # the editable install's checkout
        os.chdir(tmp_path)
        assert enter_checkout("{{ $SCENE2WORLD_HOME }}")["directory"] == str(REPO)  # placeholder left unresolved
        with pytest.raises(ConfigError, match="SCENE2WORLD_HOME"):
            enter_checkout(str(tmp_path))
    finally:
        os.chdir(here)


def test_prefect_yaml_declares_both_deployments_on_one_pool_with_limits():
    path = REPO / "prefect.yaml"
    deployments = {d["name"]: d for d in read_deployments(path)}
    assert set(deployments) == {"pipeline", "regenerate"}
    for dep in deployments.values():
        assert dep["work_pool"]["name"] == "scene2world" and dep["concurrency_limit"] == 1 and dep["tags"]
        assert (REPO / dep["parameters"]["config"]).is_file()
    (schedule,) = deployments["regenerate"]["schedules"]
    assert schedule["cron"] and schedule["timezone"]
    assert deployments["pipeline"]["parameters"] == {"config": "configs/default.yaml"}  # = make demo
    pull = yaml.safe_load(path.read_text())["pull"]
    assert list(pull[0]) == ["scene2world.flows.checkout.enter_checkout"]


def _download(files: dict[str, str], clips: dict[str, str]) -> Manifest:
    return Manifest(
        step="download",
        step_version="1",
        cache_key="k",
        files=[FileRecord(path=p, size=1, sha256=h * 64) for p, h in files.items()],
        data=dump(
            DownloadData(
                source="ds",
                source_kind="folder",
                content_sha256="0" * 64,
                not_modified=None,
                clips=[DownloadedClip(clip_id=c, format="clipgt", path=p) for c, p in clips.items()],
            )
        ),
    )


def test_clip_digests_follow_each_clips_own_files():
    clips = {"a": "dataset/x", "b": "dataset/x", "c": "dataset/c"}
    files = {"dataset/x/a.ego.parquet": "1", "dataset/x/b.ego.parquet": "2", "dataset/c/t/c.tar": "3"}
    before = diff.clip_digests(_download({**files, "dataset/x/README": "4"}, clips))
    after = diff.clip_digests(_download({**files, "dataset/x/b.ego.parquet": "5", "dataset/x/README": "6"}, clips))
    assert before["a"] == after["a"] and before["c"] == after["c"]  # a README is no clip's file
    assert before["b"] != after["b"]
    assert diff.compare_clips({"a": "1", "b": "2", "gone": "3"}, {"a": "1", "b": "9", "new": "4"}) == {
        "added": ["new"],
        "removed": ["gone"],
        "changed": ["b"],
        "unchanged": ["a"],
    }


def test_last_generation_round_trips_and_a_broken_record_starts_afresh(tmp_path):
    gen = Generation(
        source="http://h/ds.zip", resolved="http://h/ds.zip", content_sha256="0" * 64, clips={"a": "1"},
        run_dir="/runs/x", generated_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    path = write_generation(tmp_path, gen)
    assert path == state_path(tmp_path, gen.source) and read_generation(tmp_path, gen.source) == gen
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left beside it
    assert state_path(tmp_path, "http://h/ds.zip") != state_path(tmp_path, "http://other/ds.zip")
    path.write_text("{not json")
    assert read_generation(tmp_path, gen.source) is None


def test_report_counts_and_markdown():
    def clip(path: str, rendered: list[str] | None) -> RenderedClip:
        if rendered is None:  # a manifest written before the render step recorded reuse
            return RenderedClip(cameras={"c1": path}, num_frames=1, frames=(0, 1), format="clipgt")
        reused = [c for c in ("c1",) if c not in rendered]
        return RenderedClip(
            cameras={"c1": path}, num_frames=1, frames=(0, 1), format="clipgt", rendered=rendered, reused=reused
        )

    def render(clips: dict[str, RenderedClip]) -> Manifest:
        return Manifest(step="render", step_version="1", cache_key="k", data=dump(RenderData(clips=clips)))

    new = render({"a": clip("x", []), "b": clip("y", ["c1"])})
    assert diff.camera_counts(new, cache_hit=False) == {"rendered": 1, "reused": 1}
    assert diff.camera_counts(new, cache_hit=True) == {"rendered": 0, "reused": 2}
    old = render({"a": clip("x", None), "b": clip("y", None)})
    assert "rendered" not in old.data["clips"]["a"]  # left out, as such manifests have it
    old.stats = {"rendered_cameras": 2, "reused_cameras": 0}
    assert diff.camera_counts(old, cache_hit=False) == {"rendered": 2, "reused": 0}

    def sample(reused: bool) -> InferredSample:
        return InferredSample(
            clip_id="a", variant="v", seed=0, reused=reused, key="k", spec="s", json_="j", outputs={}, grid=None,
            combined=None,
        )  # fmt: skip

    samples = {"a.v.0": sample(True), "b.v.0": sample(False)}
    infer = Manifest(
        step="infer", step_version="2", cache_key="k",
        data=dump(InferData(engine="preview", nproc_per_node=1, spec="s", samples=samples, logs=[], warnings=[])),
    )  # fmt: skip
    assert diff.sample_counts(infer, cache_hit=False) == {"inferred": 1, "reused": 1}
    assert diff.sample_counts(infer, cache_hit=True) == {"inferred": 0, "reused": 2}
    assert diff.sample_names(infer) == ["a.v.0", "b.v.0"]
    report = diff.build_report(
        source="s", not_modified=True, content_changed=False, previous=None,
        clips={"added": ["a", "b"], "removed": [], "changed": [], "unchanged": []},
        cameras={"rendered": 1, "reused": 1}, samples={"inferred": 1, "reused": 1}, run_dir="/r",
    )  # fmt: skip
    text = diff.report_markdown(report)
    assert "| added | 2 | a, b |" in text and "1 rendered, 1 reused" in text and "1 inferred, 1 reused" in text


def test_probe_of_a_server_that_is_down_is_one_dataset_error(tmp_path):
    import socket

    from scene2world.config import DownloadConfig
    from scene2world.errors import DatasetError
    from scene2world.regeneration.probe import probe_source

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/ds.zip"
    cfg = DownloadConfig(source=url, retries=0, timeout_s=5)
    with pytest.raises(DatasetError, match=r"ds\.zip: download failed after 1 attempt"):
        probe_source(cfg, {}, tmp_path)
    assert not any(tmp_path.rglob("*.zip"))  # nothing that could pass for a download

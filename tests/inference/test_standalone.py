"""``scene2world infer SPEC``: a spec file run as is, cached on its content."""

from __future__ import annotations

from scene2world.config import InferConfig
from scene2world.inference.spec import build_sample, write_spec
from scene2world.inference.standalone import infer_spec
from scene2world.manifest import read_manifest, verify_files


def test_spec_file_runs_then_hits_then_misses_on_a_new_prompt(controls, tmp_path):
    cfg = InferConfig(engine="preview", nproc_per_node=2, backend="gloo")
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    spec = write_spec([build_sample("clip", controls, cfg, spec_dir)], spec_dir / "spec.json")
    first = infer_spec(spec, cfg, data_root=tmp_path / "data")
    manifest = read_manifest(first)
    assert verify_files(first.parent, manifest) == []
    assert set(manifest.data["samples"]["clip"]["outputs"]) == {"front_wide", "cross_right", "rear"}

    lines: list[str] = []
    assert infer_spec(spec, cfg, data_root=tmp_path / "data", log_line=lines.append) == first
    assert any("cache hit" in line for line in lines)

    other = cfg.model_copy(update={"prompt": "a snowy night"})
    assert infer_spec(spec, other, data_root=tmp_path / "data") != first

from pathlib import Path

import pytest

from scene2world.config import PipelineConfig, load_config, parse_overrides
from scene2world.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["default.yaml", "nvidia-example1.yaml", "nightly.yaml"])
def test_bundled_configs_validate(name):
    cfg = load_config(REPO / "configs" / name)
    assert isinstance(cfg, PipelineConfig)


def test_default_config_runs_the_bundled_example_on_the_preview_engine():
    cfg = load_config(REPO / "configs" / "default.yaml")
    assert cfg.download.source == "assets/example"
    assert cfg.infer.engine == "preview" and cfg.infer.nproc_per_node == 2
    assert cfg.render.cameras is None  # every camera of each clip's own rig (7 on the example)
    assert cfg.render.task_runner == "local" and cfg.render.dask_address is None


def test_dask_address_must_be_a_scheduler_url():
    with pytest.raises(ConfigError, match=r"`render.dask_address`"):
        load_config(None, ["render.task_runner=dask", "render.dask_address=localhost:8786"])
    cfg = load_config(None, ["render.task_runner=dask", "render.dask_address=tcp://10.0.0.5:8786"])
    assert cfg.render.dask_address == "tcp://10.0.0.5:8786"


def test_invalid_literal_names_key_and_allowed_values(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("render:\n  look: pretty\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "`render.look`" in msg
    assert "'nvidia'" in msg and "'fixed'" in msg and "pretty" in msg


def test_unknown_key_is_rejected_with_its_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("infer:\n  enginee: preview\n")
    with pytest.raises(ConfigError, match=r"`infer.enginee`: unknown key"):
        load_config(path)


def test_out_of_range_value(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("infer:\n  guidance: 9\n")
    with pytest.raises(ConfigError, match=r"`infer.guidance`: Input should be less than or equal to 7 \(got 9\)"):
        load_config(path)


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("render:\n  look: [nvidia\n")
    with pytest.raises(ConfigError, match=r"invalid YAML at line \d+"):
        load_config(path)


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Path("/nonexistent/config.yaml"))


def test_camera_names_are_checked(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("render:\n  cameras: [camera:front:wide:120fov]\n")
    with pytest.raises(ConfigError, match=r"`render.cameras.0`.*camera_front_wide_120fov"):
        load_config(path)


def test_overrides_merge_deeply(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("render:\n  look: fixed\n  msaa: 4\n")
    cfg = load_config(path, ["render.msaa=1", "infer.nproc_per_node=4", "download.clip_ids=[a, b]"])
    assert cfg.render.look == "fixed" and cfg.render.msaa == 1
    assert cfg.infer.nproc_per_node == 4
    assert cfg.download.clip_ids == ["a", "b"]


def test_override_errors():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["render.msaa"])
    with pytest.raises(ConfigError, match=r"`render.msaa`"):
        load_config(None, ["render.msaa=3"])


def test_frames_pattern():
    assert load_config(None, ["render.frames='10:20'"]).render.frames == "10:20"
    with pytest.raises(ConfigError, match=r"`render.frames`"):
        load_config(None, ["render.frames=10-20"])

import shutil
from pathlib import Path

import pytest

from scene2world.cli import main
from scene2world.manifest import Manifest, read_manifest, record_tree, write_manifest
from tests.conftest import EXAMPLE


def _last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_bad_config_exits_2_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("render:\n  msaa: 3\n")
    assert main(["run", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "`render.msaa`" in err[0] and "Input should be 1 or 4" in err[0]


def test_download_prints_its_manifest_last_and_hits_the_second_time(tmp_path, capsys):
    args = ["download", str(EXAMPLE), "--set", f"data_root={tmp_path}"]
    assert main(args) == 0
    first = Path(_last_line(capsys.readouterr().out))
    assert first.name == "manifest.json" and first.is_file()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert Path(_last_line(captured.out)) == first
    assert "cache hit" in captured.err


def test_download_of_a_missing_folder_is_a_user_error(tmp_path, capsys):
    assert main(["download", str(tmp_path / "nope"), "--set", f"data_root={tmp_path}"]) == 2
    assert "nope" in capsys.readouterr().err


def test_render_rejects_unknown_camera_before_rendering(tmp_path, capsys):
    code = main(["render", str(EXAMPLE), "--cameras", "camera_roof_360", "--set", f"data_root={tmp_path}"])
    assert code == 2
    assert "camera_roof_360" in capsys.readouterr().err


def test_render_frame_range_outside_the_clip(tmp_path, capsys):
    code = main(
        ["render", str(EXAMPLE), "--cameras", "camera_front_wide_120fov", "--frames", "500:510",
         "--set", f"data_root={tmp_path}"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "500" in err and "151" in err
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []  # checked before anything was written


def test_render_png_frames(tmp_path, capsys):
    out = tmp_path / "png"
    code = main(
        ["render", str(EXAMPLE), "--cameras", "camera_front_wide_120fov", "--frames", "10:12", "--png",
         "--out", str(out), "--set", f"data_root={tmp_path / 'data'}"]
    )  # fmt: skip
    assert code == 0
    assert Path(_last_line(capsys.readouterr().out)) == out / "manifest.json"
    frames = sorted(p.name for p in (out / "s2w_demo_curve_0001" / "camera_front_wide_120fov").iterdir())
    assert frames == ["000010.png", "000011.png"]
    assert read_manifest(out / "manifest.json").settings["line_caps"] == "culled"


def test_render_line_caps_all_is_its_own_output(tmp_path, capsys):
    """``--line-caps all`` reaches the renderer and is part of the step key (a different output)."""
    args = ["render", str(EXAMPLE), "--cameras", "camera_front_wide_120fov", "--frames", "10:11", "--png"]
    args += ["--set", f"data_root={tmp_path}"]
    assert main(args) == 0
    culled = Path(_last_line(capsys.readouterr().out))
    assert main([*args, "--line-caps", "all"]) == 0
    exact = Path(_last_line(capsys.readouterr().out))
    assert exact != culled and read_manifest(exact).settings["line_caps"] == "all"


def test_render_refuses_to_overwrite_a_users_folder(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    code = main(
        ["render", str(EXAMPLE), "--cameras", "camera_front_wide_120fov", "--frames", "0:2", "--png",
         "--out", str(out), "--set", f"data_root={tmp_path / 'data'}"]
    )  # fmt: skip
    assert code == 2
    assert (out / "thesis.tex").read_text() == "keep me"
    assert "not a scene2world output" in capsys.readouterr().err
    assert not (tmp_path / "data" / "render-cameras").exists()  # refused before rendering anything


def test_infer_on_a_download_manifest_is_a_user_error(tmp_path, capsys):
    assert main(["download", str(EXAMPLE), "--set", f"data_root={tmp_path}"]) == 0
    manifest = _last_line(capsys.readouterr().out)
    assert main(["infer", manifest, "--set", f"data_root={tmp_path}"]) == 2
    assert "render manifest" in capsys.readouterr().err


def test_verify_reports_a_tampered_folder(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE, run / "controls")  # real files under a package-step manifest
    from scene2world.contracts import InputRef, PackageData, PackageInputs, dump

    data = PackageData(
        name="run", source=None, config=None, info={}, versions={},
        inputs=PackageInputs(render=InputRef(cache_key="r", digest="d", manifest_path="/r"), infer=None),
        clips={}, samples={}, spec=[], logs=[], contact_sheet=None, cosmos_layout=None, archive=None,
    )  # fmt: skip
    write_manifest(
        run, Manifest(step="package", step_version="1", cache_key="k" * 20, files=record_tree(run), data=dump(data))
    )
    assert main(["verify", str(run)]) == 0
    capsys.readouterr()
    victim = sorted((run / "controls").rglob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert main(["verify", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{victim.relative_to(run).as_posix()}: sha256 changed" in err


def test_verify_reports_a_folder_without_manifest(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    assert "manifest" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["render"], ["frobnicate"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_render_out_with_a_foreign_manifest_keeps_the_users_files(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "app"}')
    (out / "thesis.txt").write_text("x")
    code = main(
        ["render", str(EXAMPLE), "--cameras", "camera_front_wide_120fov", "--frames", "0:2", "--png",
         "--out", str(out), "--set", f"data_root={tmp_path / 'data'}"]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{out}: not a scene2world output" in err[0] and "manifest.json" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "thesis.txt"]
    assert (out / "thesis.txt").read_text() == "x"


def test_package_out_dot_in_a_project_folder_deletes_nothing(tmp_path, capsys, monkeypatch):
    from scene2world.manifest import UpstreamRef, read_manifest, write_manifest
    from tests.packaging.upstream_data import make_infer, make_render

    render = make_render(tmp_path / "render") / "manifest.json"
    infer_dir = make_infer(tmp_path / "infer", render.parent)
    upstream = UpstreamRef(step="render", cache_key="r" * 64, digest="d" * 64, manifest_path=str(render))
    infer = write_manifest(infer_dir, read_manifest(infer_dir).model_copy(update={"upstream": upstream}))
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('hi')\n")
    (project / "manifest.json").write_text('{"name": "project", "version": 3}')
    monkeypatch.chdir(project)
    code = main(["package", str(infer), "--out", ".", "--set", f"runs_dir={tmp_path / 'runs'}"])
    assert code == 2
    assert "not a scene2world output" in capsys.readouterr().err
    assert (project / "src" / "main.py").read_text() == "print('hi')\n"
    assert sorted(p.name for p in project.iterdir()) == ["manifest.json", "src"]


@pytest.mark.parametrize("cameras", [",", " , ", ""])
def test_render_without_a_camera_name_is_a_user_error(tmp_path, capsys, cameras):
    code = main(["render", str(EXAMPLE), "--cameras", cameras, "--set", f"data_root={tmp_path}"])
    assert code == 2
    assert "--cameras" in capsys.readouterr().err
    assert not (tmp_path / "render").exists()


def test_render_with_a_camera_named_twice_renders_it_once(tmp_path, capsys):
    cam = "camera_front_wide_120fov"
    code = main(
        ["render", str(EXAMPLE), "--cameras", f"{cam},{cam}", "--frames", "0:1", "--png",
         "--set", f"data_root={tmp_path}"]
    )  # fmt: skip
    assert code == 0
    manifest = read_manifest(Path(_last_line(capsys.readouterr().out)))
    assert manifest.settings["cameras"] == [cam]


def test_download_of_an_empty_folder_names_that_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["download", str(empty), "--set", f"data_root={tmp_path / 'data'}"]) == 2
    err = capsys.readouterr().err
    assert f"{empty}: no clip found" in err and ".staging" not in err

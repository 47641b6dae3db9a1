"""The package as a user gets it: a wheel built from the checkout, installed with its declared
dependencies into a fresh virtualenv outside the checkout, renders a frame there.

Slow (a fresh environment with torch and Prefect): marked ``install``. pip reuses its cache and the
local torch wheel (``constraints.txt`` pins every version, as ``make`` does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scene2world import __version__
from tests.conftest import EXAMPLE, REPO

pytestmark = [pytest.mark.install, pytest.mark.timeout(1500)]

CAMERA = "camera_front_wide_120fov"


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    return done


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"{done.args} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _clean_env(tmp_path: Path) -> dict[str, str]:
    """This process's environment without anything that points back into the checkout or its venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(REPO)))
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PIP_NO_INPUT"] = "1"
    return env


def test_wheel_installs_into_a_fresh_venv_and_renders(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    # the sources a wheel is built from, copied so that no build output lands in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "scene2world", src / "scene2world", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    _ok(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)], env, tmp_path))
    wheels = sorted(dist.glob("scene2world-*.whl"))
    assert [w.name for w in wheels] == [f"scene2world-{__version__}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    _ok(_run([sys.executable, "-m", "venv", str(venv)], env, tmp_path))
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    install = [str(python), "-m", "pip", "install", "-q", "--no-compile", "-c", str(REPO / "constraints.txt")]
    _ok(_run([*install, str(wheels[0])], env, tmp_path))
    _ok(_run([str(python), "-m", "pip", "check"], env, tmp_path))

    # the installed copy is the one that runs, not the checkout
    where = _ok(_run([str(python), "-c", "import scene2world, pyrender; print(scene2world.__file__)"], env, tmp_path))
    assert Path(where.strip()).is_relative_to(venv), where

    expected = f"scene2world {__version__}"
    assert _ok(_run([str(bin_dir / "scene2world"), "--version"], env, tmp_path)).strip() == expected
    assert _ok(_run([str(python), "-m", "scene2world", "--version"], env, tmp_path)).strip() == expected

    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example)
    out = tmp_path / "png"
    render = [str(bin_dir / "scene2world"), "render", str(example), "--cameras", CAMERA, "--frames", "0:1", "--png"]
    render += ["--msaa", "1", "--out", str(out), "--set", f"data_root={tmp_path / 'data'}"]
    manifest = _ok(_run(render, env, tmp_path)).strip().splitlines()[-1]
    assert Path(manifest) == out / "manifest.json"
    frames = sorted(out.glob(f"*/{CAMERA}/*.png"))
    assert [f.name for f in frames] == ["000000.png"]
    image = np.asarray(Image.open(frames[0]).convert("RGB"))
    assert image.shape == (720, 1280, 3)
    assert np.count_nonzero(image.max(axis=-1)) > 10_000, "the rendered frame is (nearly) black"

    if _run([str(bin_dir / "scene2world"), "doctor", "--help"], env, tmp_path).returncode == 0:
        _ok(_run([str(bin_dir / "scene2world"), "doctor"], env, tmp_path))

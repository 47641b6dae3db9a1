"""``scene2world doctor`` on this machine (what passes, what fails with which message) and on broken set-ups:
a missing checkout, a wrong interpreter, more ranks than visible GPUs, an unreachable Prefect API."""

from __future__ import annotations

import http.server
import os
import sys
import threading

import pytest

from scene2world.cli import main
from scene2world.config import load_config
from scene2world.doctor import (
    can_run,
    check_cosmos,
    check_geometry_kernels,
    check_prefect,
    check_torch,
    check_views,
    run_checks,
)
from tests.conftest import REPO
from tests.inference.fake_cosmos import make_checkout

pytestmark = pytest.mark.timeout(300)


def _cfg(tmp_path, *extra):
    return load_config(None, [f"data_root={tmp_path / 'data'}", "render.device=cpu", *extra])


def _by_name(checks):
    return {c.name: c for c in checks}


def test_doctor_passes_for_the_default_pipeline_on_this_machine(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert main(["doctor", "--set", f"data_root={tmp_path / 'data'}", "--set", "render.device=cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "doctor: the configured pipeline (engine preview) can run on this machine"
    status = {line.split(":")[0].split(None, 1)[1]: line.split()[0] for line in lines[:-1]}
    assert status["egl (cpu)"] == "ok" and status["ffmpeg libx264"] == "ok" and status["torch"] == "ok"
    assert status["disk"] == "ok" and status["prefect api"] == "skip" and status["egl (gpu)"] == "skip"
    assert status["compiled geometry"] == "ok"
    assert any(line.startswith("ok    egl (cpu): pyrender renders on llvmpipe") for line in lines)


def test_broken_cosmos_setup_fails_with_the_fix(tmp_path, capsys):
    # no checkout at all: exit 2, one line per check, the failing one with its fix
    args = ["doctor", "--set", f"data_root={tmp_path / 'data'}", "--set", "render.device=cpu"]
    assert main([*args, "--set", "infer.engine=cosmos", "--set", "infer.nproc_per_node=8"]) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert any(line.startswith("ok    ffmpeg libx264") for line in lines)
    (missing,) = [line for line in lines if line.startswith("FAIL  cosmos checkout")]
    assert "needs `infer.cosmos.repo_dir`" in missing and "fix: " in missing
    assert "scene2world doctor: error: 1 check(s) failed" in captured.err and "cosmos checkout" in captured.err


def test_wrong_interpreter_and_too_many_ranks(tmp_path):
    bare = make_checkout(tmp_path / "bare", venv=False, package=False)
    checks = _by_name(check_cosmos(_cfg(tmp_path, "infer.engine=cosmos", f"infer.cosmos.repo_dir={bare}")))
    assert checks["cosmos checkout"].status == "ok" and checks["cosmos interpreter"].status == "FAIL"
    assert "run `uv sync`" in (checks["cosmos interpreter"].fix or "")

    wrong = _cfg(
        tmp_path, "infer.engine=cosmos", f"infer.cosmos.repo_dir={bare}", f"infer.cosmos.python={sys.executable}"
    )
    checks = _by_name(check_cosmos(wrong))
    assert checks["cosmos imports"].status == "FAIL"
    assert "No module named 'cosmos_transfer2'" in checks["cosmos imports"].detail

    repo = make_checkout(tmp_path / "cosmos-transfer2.5")
    eight = _cfg(tmp_path, "infer.engine=cosmos", f"infer.cosmos.repo_dir={repo}", "infer.nproc_per_node=8")
    checks = _by_name(check_cosmos(eight, environ={"HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin"}))
    assert checks["cosmos imports"].status == "ok"
    gpus = checks["cosmos gpus"]
    assert (
        gpus.status == "FAIL" and gpus.detail == "infer.nproc_per_node = 8 but the Cosmos torch sees 0 CUDA device(s)"
    )
    assert (
        checks["cosmos checkpoint"].status == "warn" and "first run downloads it" in checks["cosmos checkpoint"].detail
    )
    assert not can_run(checks.values())

    nccl = check_torch(_cfg(tmp_path, "infer.backend=nccl", "infer.nproc_per_node=2"))
    assert nccl.status == "FAIL" and "need one GPU each" in nccl.detail and "infer.backend=gloo" in (nccl.fix or "")


def test_gpu_plan(tmp_path):
    seven = check_views(_cfg(tmp_path, "infer.engine=cosmos", "infer.nproc_per_node=4"))
    assert seven.status == "FAIL" and "7 active views need at least 7 ranks" in seven.detail
    assert seven.fix is not None and seven.fix.startswith("set infer.nproc_per_node=8")
    four = check_views(
        _cfg(tmp_path, "infer.engine=cosmos", "infer.nproc_per_node=4", "render.cameras=[camera_front_wide_120fov]")
    )
    assert four.status == "ok"
    short = check_views(_cfg(tmp_path, "render.frames='0:60'"))
    assert short.status == "FAIL" and "a chunk at fps 10 reads 87" in short.detail


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


def test_prefect_api_reachable_or_not():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        assert check_prefect({"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}).status == "ok"
    finally:
        server.shutdown()
        server.server_close()
    down = check_prefect({"PREFECT_API_URL": f"http://127.0.0.1:{port}/api"})
    assert down.status == "FAIL" and "does not answer" in down.detail and "prefect server start" in (down.fix or "")
    assert check_prefect({}).status == "skip"


def test_run_checks_order_and_verdict(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    checks = run_checks(_cfg(tmp_path, "infer.backend=nccl"))
    assert [c.name for c in checks][:2] == ["egl (cpu)", "egl (gpu)"]
    assert _by_name(checks)["torch"].status == "FAIL" and not can_run(checks)


def test_compiled_geometry_without_numba_fails_with_the_fix(tmp_path):
    """A worker environment whose numba cannot load (here: a numba that raises on import)."""
    broken = tmp_path / "site" / "numba"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('llvmlite: no LLVM for this CPU')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(REPO)]))
    check = check_geometry_kernels(env)
    assert check.status == "FAIL" and "no LLVM for this CPU" in check.detail
    assert "pip install 'numba>=0.60'" in check.line()
    ok = check_geometry_kernels()
    assert ok.status == "ok" and ok.detail.startswith("numba ")

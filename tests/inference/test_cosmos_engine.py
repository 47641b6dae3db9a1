"""The `cosmos` engine's first real run, against a fake checkout (tests/inference/fake_cosmos.py) under real
torchrun: the interpreter is found and checked, the ranks get the user's environment minus the deny-list,
a guardrail block stops every rank at once with its message, seeds and checkpoint paths are checked and
resolved before launching."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scene2world.config import MAX_SEED, CosmosEngineConfig, InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.run import run_inference
from scene2world.inference.spec import build_sample, write_spec

from .conftest import CAMERAS
from .fake_cosmos import make_checkout

pytestmark = pytest.mark.timeout(240)


def _cfg(repo: Path, **cosmos: object) -> InferConfig:
    return InferConfig(
        engine="cosmos",
        nproc_per_node=2,
        save_combined_views=True,
        timeout_s=180,
        cosmos=CosmosEngineConfig(repo_dir=repo, **cosmos),  # type: ignore[arg-type]
    )


def _spec(tmp_path: Path, controls: dict[str, Path], cfg: InferConfig, **fields: object) -> Path:
    sample = build_sample("clip", {CAMERAS[0]: controls[CAMERAS[0]]}, cfg, tmp_path)
    return write_spec([{**sample, **fields}], tmp_path / "spec.json")


def _no_staging_left(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_checkout_interpreter_runs_with_the_users_environment(controls, tmp_path, monkeypatch):
    repo = make_checkout(tmp_path / "cosmos-transfer2.5")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/company-ca.pem")
    monkeypatch.setenv("TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC", "7200")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("TORCH_SYMM_MEM_DISABLE_MULTICAST", "0")  # the user's choice wins
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")  # scene2world's interpreter identity: never passed on
    cfg = _cfg(repo)
    out = tmp_path / "out"
    lines: list[str] = []
    result = run_inference(_spec(tmp_path, controls, cfg), out, cfg, log=lines.append)
    assert result.command.split(" -m torch.distributed.run")[0].endswith(str(repo / ".venv" / "bin" / "python"))
    assert any(f"interpreter {repo / '.venv' / 'bin' / 'python'}" in line for line in lines)
    env = json.loads((out / "env.json").read_text())
    assert env["HTTPS_PROXY"] == "http://proxy.example:3128" and env["REQUESTS_CA_BUNDLE"] == "/etc/company-ca.pem"
    assert env["TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC"] == "7200" and env["OMP_NUM_THREADS"] == "3"
    assert env["NCCL_NVLS_ENABLE"] == "0" and env["NVSHMEM_DISABLE_NVLS"] == "1"
    assert env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "0"
    assert "PYTHONHOME" not in env and env["PATH"].startswith(str(repo / ".venv" / "bin"))
    assert (out / "clip.mp4").is_file() and "--no-keep-going" in json.loads((out / "argv.json").read_text())


def test_checkout_without_environment_names_the_fix(controls, tmp_path):
    repo = make_checkout(tmp_path / "cosmos-transfer2.5", venv=False)
    cfg = _cfg(repo)
    with pytest.raises(InferenceError, match=r"no \.venv/bin/python \(the checkout is not set up\); run `uv sync`"):
        run_inference(_spec(tmp_path, controls, cfg), tmp_path / "out", cfg)
    assert not (tmp_path / "out").exists() and _no_staging_left(tmp_path)


def test_wrong_interpreter_is_caught_before_launch(controls, tmp_path):
    repo = make_checkout(tmp_path / "cosmos-transfer2.5", package=False)
    cfg = _cfg(repo, python=sys.executable)  # scene2world's own interpreter: no cosmos package
    with pytest.raises(InferenceError) as info:
        run_inference(_spec(tmp_path, controls, cfg), tmp_path / "out", cfg)
    message = str(info.value)
    assert f"`infer.cosmos.python` = {sys.executable} cannot import the Cosmos code" in message
    assert "No module named 'cosmos_transfer2'" in message and "docs/cosmos.md" in message
    assert info.value.returncode is None  # nothing was launched
    assert (Path(__file__).resolve().parents[2] / "docs" / "cosmos.md").is_file()
    with pytest.raises(InferenceError, match=r"`infer.cosmos.python` = 'no-such-python3': not found on PATH"):
        run_inference(_spec(tmp_path, controls, cfg), tmp_path / "out", _cfg(repo, python="no-such-python3"))


def test_guardrail_block_stops_every_rank_with_its_message(controls, tmp_path):
    repo = make_checkout(tmp_path / "cosmos-transfer2.5")
    cfg = _cfg(repo)
    spec = _spec(tmp_path, controls, cfg, prompt="please BLOCK this")
    with pytest.raises(InferenceError) as info:
        run_inference(spec, tmp_path / "out", cfg)
    message = str(info.value)
    first = message.splitlines()[0]
    assert (
        first.startswith("a guardrail blocked a sample: ")
        and "Guardrail blocked generation. Prompt: please BLOCK" in first
    )
    assert "timed out" not in message  # rank 1 did not wait for the collective: torchrun stopped it
    assert not (tmp_path / "out").exists()


def test_seed_and_checkpoint_are_checked_and_resolved_before_launch(controls, tmp_path, monkeypatch):
    repo = make_checkout(tmp_path / "cosmos-transfer2.5")
    cfg = _cfg(repo).model_copy(update={"nproc_per_node": 1})
    auto = {"fps": 30, "enable_autoregressive": True, "num_chunks": 2}  # 90 frames at 30 fps: 2 chunks fit
    spec = _spec(tmp_path, controls, cfg, seed=MAX_SEED, **auto)
    with pytest.raises(InferenceError, match=rf"`seed`: {MAX_SEED} \+ 1 .* exceeds .*fix: use a seed ≤ {MAX_SEED - 1}"):
        run_inference(spec, tmp_path / "out", cfg)
    assert not (tmp_path / "out").exists() and _no_staging_left(tmp_path)

    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    monkeypatch.chdir(work)
    missing = cfg.model_copy(update={"cosmos": cfg.cosmos.model_copy(update={"checkpoint_path": "ckpt/none.pt"})})
    spec = _spec(tmp_path, controls, cfg, seed=MAX_SEED - 1, **auto)
    with pytest.raises(InferenceError, match=rf"no file at {work / 'ckpt' / 'none.pt'} \(relative paths are taken"):
        run_inference(spec, tmp_path / "out", missing)

    (work / "ckpt" / "model.pt").write_bytes(b"weights")
    relative = cfg.model_copy(update={"cosmos": cfg.cosmos.model_copy(update={"checkpoint_path": "ckpt/model.pt"})})
    run_inference(spec, tmp_path / "out", relative)  # the fake resolves a relative path inside the checkout
    argv = json.loads((tmp_path / "out" / "argv.json").read_text())
    assert f"--checkpoint-path={work / 'ckpt' / 'model.pt'}" in argv

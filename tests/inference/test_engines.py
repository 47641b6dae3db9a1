from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scene2world.config import CosmosEngineConfig, InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.engines import engine_command, passthrough_env

pytestmark = pytest.mark.timeout(30)

ENVIRON = {
    "PATH": "/usr/bin",
    "HOME": "/root",
    "CUDA_VISIBLE_DEVICES": "0,1",
    "NCCL_DEBUG": "INFO",
    "HF_HOME": "/cache/hf",
    "LC_ALL": "C.UTF-8",
    "AWS_SECRET_ACCESS_KEY": "x",
    "MASTER_PORT": "1234",
    "RANK": "3",
}


def test_passthrough_keeps_the_users_environment_minus_the_deny_list():
    env = passthrough_env({**ENVIRON, "TORCHELASTIC_RUN_ID": "x", "PYTHONHOME": "/elsewhere"})
    assert set(env) == {
        "PATH",
        "HOME",
        "CUDA_VISIBLE_DEVICES",
        "NCCL_DEBUG",
        "HF_HOME",
        "LC_ALL",
        "AWS_SECRET_ACCESS_KEY",
    }


def test_preview_command(tmp_path):
    cfg = InferConfig(engine="preview", nproc_per_node=3, backend="gloo")
    cmd = engine_command(cfg, Path("spec.jsonl"), tmp_path / "out", log_dir=tmp_path / "logs", environ=ENVIRON)
    argv = list(cmd.argv)
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc-per-node=3" in argv and "--tee=3" in argv and f"--log-dir={tmp_path / 'logs'}" in argv
    tail = ["-m", "scene2world.inference.preview_worker", "-i", str(Path("spec.jsonl").absolute())]
    assert argv[-8:] == [*tail, "-o", str(tmp_path / "out"), "--backend", "gloo"]
    assert cmd.cwd == tmp_path
    assert cmd.env["OMP_NUM_THREADS"] == "1" and cmd.env["PYTHONUNBUFFERED"] == "1"
    assert cmd.env["PYTHONPATH"] == str(Path(__file__).resolve().parents[2])
    assert "RANK" not in cmd.env and "MASTER_PORT" not in cmd.env
    assert cmd.env["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_cosmos_command(tmp_path):
    repo = tmp_path / "cosmos-transfer2.5"
    (repo / "examples").mkdir(parents=True)
    (repo / "examples" / "multiview.py").write_text("")
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").write_text("")
    cosmos = CosmosEngineConfig(
        repo_dir=repo,
        python=None,
        checkpoint_path="/ckpt/model.pt",
        experiment="transfer2_auto_multiview_post_train_example",
        disable_guardrails=True,
        offload_guardrail_models=True,
    )
    cfg = InferConfig(engine="cosmos", nproc_per_node=8, cosmos=cosmos)
    cmd = engine_command(cfg, tmp_path / "spec.json", tmp_path / "out", environ=ENVIRON)
    argv = list(cmd.argv)
    assert argv[0] == str(repo / ".venv" / "bin" / "python") and "--nproc-per-node=8" in argv
    i = argv.index("examples.multiview")
    assert argv[i - 1 :] == [
        "-m",
        "examples.multiview",
        "-i",
        str(tmp_path / "spec.json"),
        "-o",
        str(tmp_path / "out"),
        "--context-parallel-size=8",
        "--no-keep-going",
        "--checkpoint-path=/ckpt/model.pt",
        "--experiment=transfer2_auto_multiview_post_train_example",
        "--disable-guardrails",
        "--offload-guardrail-models",
    ]
    assert cmd.cwd == repo and "PYTHONPATH" not in cmd.env and cmd.env["NCCL_DEBUG"] == "INFO"
    assert cmd.env["PATH"].split(":")[0] == str(repo / ".venv" / "bin")
    plain = engine_command(
        InferConfig(engine="cosmos", cosmos=CosmosEngineConfig(repo_dir=repo)), Path("s.json"), Path("o")
    )
    assert not [a for a in plain.argv if a.startswith(("--checkpoint", "--experiment", "--disable", "--offload"))]


def test_cosmos_needs_a_checkout(tmp_path):
    with pytest.raises(InferenceError, match=r"needs `infer.cosmos.repo_dir`.*--engine preview"):
        engine_command(InferConfig(engine="cosmos"), Path("s.json"), Path("o"))
    cfg = InferConfig(engine="cosmos", cosmos=CosmosEngineConfig(repo_dir=tmp_path))
    with pytest.raises(InferenceError, match=r"no examples/multiview\.py there"):
        engine_command(cfg, Path("s.json"), Path("o"))

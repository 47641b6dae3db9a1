"""The torchrun command of each inference engine.

* ``preview``: scene2world's own worker (:mod:`scene2world.inference.preview_worker`), run by the
  current interpreter; no model, any rank count, gloo on CPU and NCCL on GPU.
* ``cosmos``: ``-m examples.multiview`` inside the user's cosmos-transfer2.5 checkout
  (``infer.cosmos.repo_dir``), run by the Cosmos environment's interpreter, with
  ``--context-parallel-size`` equal to the rank count (``reference/cosmos_inference.md`` §1.2).

Both get the same ``-i SPEC -o OUT`` contract and an explicit environment: a short list of
system variables and the CUDA/NCCL/Hugging Face/Cosmos families are passed through, nothing else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import scene2world
from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.launcher import TorchrunCommand, build_torchrun_argv

PREVIEW_MODULE = "scene2world.inference.preview_worker"
COSMOS_MODULE = "examples.multiview"
COSMOS_REPO_URL = "https://github.com/nvidia-cosmos/cosmos-transfer2.5"

PASS_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TERM",
        "LD_LIBRARY_PATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "XDG_CACHE_HOME",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "TOKENIZERS_PARALLELISM",
        "PYTORCH_CUDA_ALLOC_CONF",
        "GLOO_SOCKET_IFNAME",
    }
)
"""Variables passed to the ranks as they are."""

PASS_PREFIXES = ("LC_", "CUDA_", "NCCL_", "NVIDIA_", "HF_", "COSMOS_", "TORCH_CUDA_", "TRITON_", "CUBLAS_", "UV_")
"""Variable families passed to the ranks (``CUDA_VISIBLE_DEVICES``, ``NCCL_DEBUG``, ``HF_HOME``, …)."""


def passthrough_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The subset of ``environ`` (default ``os.environ``) the ranks inherit."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k in PASS_NAMES or k.startswith(PASS_PREFIXES)}


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def rank_env(cfg: InferConfig, *, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The explicit environment of the ranks of ``cfg.engine``.

    Unbuffered Python output (lines reach the log as they happen); ``OMP_NUM_THREADS=1`` when the
    ranks run on CPU (several ranks share the cores; it is also torchrun's own default).
    """
    env = passthrough_env(environ)
    env["PYTHONUNBUFFERED"] = "1"
    cpu_ranks = cfg.engine == "preview" and (cfg.backend == "gloo" or (cfg.backend == "auto" and not _has_gpu()))
    if cpu_ranks:
        env["OMP_NUM_THREADS"] = "1"
    if cfg.engine == "preview":
        # the worker must import this very scene2world, wherever the ranks start
        root = str(Path(scene2world.__file__).resolve().parent.parent)
        extra = (os.environ if environ is None else environ).get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join([root, extra]) if extra else root
    return env


def cosmos_repo(cfg: InferConfig) -> Path:
    """The cosmos-transfer2.5 checkout of ``cfg``; InferenceError with the fix when it is unusable."""
    repo = cfg.cosmos.repo_dir
    if repo is None:
        raise InferenceError(
            "engine `cosmos` needs `infer.cosmos.repo_dir`: clone "
            f"{COSMOS_REPO_URL}, set it up (docs/setup.md) and pass "
            "--set infer.cosmos.repo_dir=/path/to/cosmos-transfer2.5, or use --engine preview"
        )
    repo = Path(repo).expanduser().absolute()
    if not (repo / "examples" / "multiview.py").is_file():
        raise InferenceError(
            f"`infer.cosmos.repo_dir` = {repo}: no examples/multiview.py there; point it at a "
            f"cosmos-transfer2.5 checkout ({COSMOS_REPO_URL})"
        )
    return repo


def engine_program(cfg: InferConfig, spec_path: Path, out_dir: Path) -> list[str]:
    """What every rank runs, in torchrun's ``-m module args…`` form."""
    spec_path, out_dir = Path(spec_path).absolute(), Path(out_dir).absolute()
    if cfg.engine == "preview":
        return ["-m", PREVIEW_MODULE, "-i", str(spec_path), "-o", str(out_dir), "--backend", cfg.backend]
    if cfg.engine == "cosmos":
        program = ["-m", COSMOS_MODULE, "-i", str(spec_path), "-o", str(out_dir)]
        program.append(f"--context-parallel-size={cfg.nproc_per_node}")
        if cfg.cosmos.checkpoint_path:
            program.append(f"--checkpoint-path={cfg.cosmos.checkpoint_path}")
        if cfg.cosmos.experiment:
            program.append(f"--experiment={cfg.cosmos.experiment}")
        if cfg.cosmos.disable_guardrails:
            program.append("--disable-guardrails")
        if cfg.cosmos.offload_guardrail_models:
            program.append("--offload-guardrail-models")
        return program
    raise InferenceError(f"`infer.engine` = {cfg.engine!r}: expected `preview` or `cosmos`")


def engine_command(
    cfg: InferConfig,
    spec_path: Path,
    out_dir: Path,
    *,
    log_dir: Path | None = None,
    rdzv_port: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> TorchrunCommand:
    """The full torchrun launch of ``cfg.engine`` on ``spec_path``, writing into ``out_dir``.

    ``cosmos`` runs in ``cfg.cosmos.repo_dir`` with ``cfg.cosmos.python``; ``preview`` with the
    current interpreter in ``out_dir``'s parent. Per-rank logs go to ``log_dir`` (``--tee 3``).
    """
    if cfg.engine == "cosmos":
        cwd = cosmos_repo(cfg)
        python = cfg.cosmos.python
    else:
        cwd = Path(out_dir).absolute().parent
        python = sys.executable
    argv = build_torchrun_argv(
        engine_program(cfg, spec_path, out_dir),
        nproc=cfg.nproc_per_node,
        python=python,
        rdzv_port=rdzv_port,
        log_dir=None if log_dir is None else Path(log_dir).absolute(),
    )
    return TorchrunCommand(
        argv=tuple(argv),
        env=rank_env(cfg, environ=environ),
        cwd=cwd,
        log_dir=None if log_dir is None else Path(log_dir),
    )

"""The torchrun command of each inference engine.

* ``preview``: scene2world's own worker (:mod:`scene2world.inference.preview_worker`), run by the
  current interpreter; no model, any rank count, gloo on CPU and NCCL on GPU.
* ``cosmos``: ``-m examples.multiview`` inside the user's cosmos-transfer2.5 checkout
  (``infer.cosmos.repo_dir``), run by the Cosmos environment's interpreter, with
  ``--context-parallel-size`` equal to the rank count (``docs/cosmos.md``).

Both get the same ``-i SPEC -o OUT`` contract. The ranks inherit the user's environment (proxies,
CA bundles, Hugging Face and NCCL settings, ...) minus a deny-list of what scene2world must control
(:data:`DENY_NAMES`, :data:`DENY_PREFIXES`; ``docs/cosmos.md`` explains each), with NVLink
multicast off unless the user sets those variables (:data:`MULTICAST_OFF`).

For ``cosmos`` the interpreter is ``infer.cosmos.python`` or the checkout's ``.venv/bin/python``;
:func:`check_cosmos` makes sure it can import the cosmos package before any GPU is booked, and
relative checkpoint paths are taken from the current directory, not from the checkout.
``--no-keep-going`` makes a guardrail block stop the run at once with the guardrail's message
(NVIDIA's default skips the sample on rank 0 while the other ranks wait in a collective).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import scene2world
from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.launcher import TorchrunCommand, build_torchrun_argv

PREVIEW_MODULE = "scene2world.inference.preview_worker"
COSMOS_MODULE = "examples.multiview"
COSMOS_PACKAGE = "cosmos_transfer2"
COSMOS_REPO_URL = "https://github.com/nvidia-cosmos/cosmos-transfer2.5"
COSMOS_VENV_PYTHON = Path(".venv") / "bin" / "python"
"""Where NVIDIA's set-up (``uv sync``) puts the Cosmos interpreter inside the checkout."""
COSMOS_FLAGS = ("--no-keep-going",)
"""Always passed to ``examples.multiview``: a guardrail block raises on rank 0, so torchrun stops every rank."""
IMPORT_CHECK_TIMEOUT_S = 300.0
SETUP_DOC = "docs/cosmos.md"

DENY_NAMES = frozenset(
    {
        # torchrun sets the rank identity and rendezvous of every worker itself
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "LOCAL_WORLD_SIZE",
        "GROUP_RANK",
        "GROUP_WORLD_SIZE",
        "ROLE_RANK",
        "ROLE_NAME",
        "ROLE_WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        # the interpreter identity of scene2world's own environment, wrong for another interpreter
        "PYTHONHOME",
        "PYTHONEXECUTABLE",
        "__PYVENV_LAUNCHER__",
        # scene2world sets it (rank output reaches the log line by line)
        "PYTHONUNBUFFERED",
    }
)
"""Variables never passed to the ranks (scene2world or torchrun sets them)."""

DENY_PREFIXES = ("TORCHELASTIC_",)
"""Variable families never passed: a parent torchrun's elastic agent state."""

MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
"""NVLink multicast off by default (it fails on machines whose fabric manager does not allow it); a
value the user sets wins."""


def passthrough_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default ``os.environ``) minus the deny-list: what the ranks inherit."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in DENY_NAMES and not k.startswith(DENY_PREFIXES)}


def _has_gpu() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def rank_env(cfg: InferConfig, *, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the ranks of ``cfg.engine``: the user's, minus the deny-list, with more.

    Added: unbuffered Python output; NVLink multicast off (unless set); ``OMP_NUM_THREADS=1`` when preview
    ranks run on CPU and the user did not set it (several ranks share the cores; torchrun's own
    default); for ``preview`` this scene2world first on ``PYTHONPATH``; for ``cosmos`` the Cosmos
    interpreter's ``bin/`` first on ``PATH`` and no ``VIRTUAL_ENV`` of scene2world's environment.
    """
    source = os.environ if environ is None else environ
    env = passthrough_env(source)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in MULTICAST_OFF.items():
        env.setdefault(name, value)
    cpu_ranks = cfg.engine == "preview" and (cfg.backend == "gloo" or (cfg.backend == "auto" and not _has_gpu()))
    if cpu_ranks:
        env.setdefault("OMP_NUM_THREADS", "1")
    if cfg.engine == "preview":
        # the worker must import this very scene2world, wherever the ranks start
        root = str(Path(scene2world.__file__).resolve().parent.parent)
        extra = source.get("PYTHONPATH", "")
        env["PYTHONPATH"] = os.pathsep.join([root, extra]) if extra else root
    elif cfg.engine == "cosmos" and cfg.cosmos.repo_dir is not None:
        env.pop("VIRTUAL_ENV", None)
        with_bin = _python_bin_dir(cfg)
        if with_bin is not None:
            env["PATH"] = os.pathsep.join([str(with_bin), env["PATH"]]) if env.get("PATH") else str(with_bin)
    return env


def _python_bin_dir(cfg: InferConfig) -> Path | None:
    try:
        return cosmos_python(cfg).parent
    except InferenceError:
        return None


def cosmos_repo(cfg: InferConfig) -> Path:
    """The cosmos-transfer2.5 checkout of ``cfg``; InferenceError with the fix when it is unusable."""
    repo = cfg.cosmos.repo_dir
    if repo is None:
        raise InferenceError(
            "engine `cosmos` needs `infer.cosmos.repo_dir`: clone "
            f"{COSMOS_REPO_URL}, set it up ({SETUP_DOC}) and pass "
            "--set infer.cosmos.repo_dir=/path/to/cosmos-transfer2.5, or use --engine preview"
        )
    repo = Path(repo).expanduser().absolute()
    if not (repo / "examples" / "multiview.py").is_file():
        raise InferenceError(
            f"`infer.cosmos.repo_dir` = {repo}: no examples/multiview.py there; point it at a "
            f"cosmos-transfer2.5 checkout ({COSMOS_REPO_URL})"
        )
    return repo


def cosmos_python(cfg: InferConfig) -> Path:
    """The Cosmos interpreter: ``infer.cosmos.python``, else the checkout's ``.venv/bin/python``.

    A configured bare name is looked up on PATH. InferenceError with the fix when there is none.
    """
    configured = cfg.cosmos.python
    if configured:
        if os.sep not in configured and "/" not in configured:
            found = shutil.which(configured)
            if found is None:
                raise InferenceError(
                    f"`infer.cosmos.python` = {configured!r}: not found on PATH; give the full path of the Cosmos "
                    f"environment's interpreter, e.g. /path/to/cosmos-transfer2.5/{COSMOS_VENV_PYTHON}"
                )
            return Path(found)
        path = Path(configured).expanduser().absolute()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise InferenceError(
                f"`infer.cosmos.python` = {configured}: no executable there; give the Cosmos environment's "
                f"interpreter (relative paths are taken from the current directory, {Path.cwd()})"
            )
        return path
    repo = cosmos_repo(cfg)
    path = repo / COSMOS_VENV_PYTHON
    if not path.is_file():
        raise InferenceError(
            f"`infer.cosmos.repo_dir` = {repo}: no {COSMOS_VENV_PYTHON} (the checkout is not set up); run `uv sync` "
            f"in it as {SETUP_DOC} shows, or set `infer.cosmos.python` to the Cosmos environment's interpreter"
        )
    return path


def resolved_checkpoint(cfg: InferConfig) -> str | None:
    """``infer.cosmos.checkpoint_path``, a relative local path made absolute from the current directory.

    NVIDIA would take a relative path from inside the checkout, where the ranks start; URIs are kept.
    """
    value = cfg.cosmos.checkpoint_path
    if not value or "://" in value:
        return value
    return str(Path(value).expanduser().absolute())


@dataclass(frozen=True)
class CosmosSetup:
    """A checked Cosmos set-up: the checkout, its interpreter, the checkpoint argument."""

    repo: Path
    python: Path
    checkpoint: str | None
    torch_version: str | None = None


def check_cosmos(cfg: InferConfig, *, imports: bool = True, timeout_s: float = IMPORT_CHECK_TIMEOUT_S) -> CosmosSetup:
    """Check the ``cosmos`` engine's set-up before a launch; InferenceError naming the setting and the fix.

    The checkout must hold ``examples/multiview.py``; the interpreter must exist and (``imports``)
    import ``torch`` and the ``cosmos_transfer2`` package from the checkout; a local checkpoint file
    must exist.
    """
    repo = cosmos_repo(cfg)
    python = cosmos_python(cfg)
    checkpoint = resolved_checkpoint(cfg)
    if checkpoint is not None and "://" not in checkpoint and not Path(checkpoint).is_file():
        raise InferenceError(
            f"`infer.cosmos.checkpoint_path` = {cfg.cosmos.checkpoint_path}: no file at {checkpoint} (relative paths "
            "are taken from the current directory); fix the path, or unset it to use the model's default"
        )
    version = None
    if imports:
        version = _import_check(cfg, repo, python, timeout_s)
    return CosmosSetup(repo, python, checkpoint, version)


IMPORT_PROBE = (
    "import importlib.util, torch, cosmos_transfer2\n"
    "assert importlib.util.find_spec('examples.multiview') is not None, 'no module examples.multiview'\n"
    "print(torch.__version__, torch.cuda.device_count())"
)
"""Run by the Cosmos interpreter in the checkout: prints ``<torch version> <CUDA devices>``."""


def _import_check(cfg: InferConfig, repo: Path, python: Path, timeout_s: float) -> str:
    try:
        proc = subprocess.run(
            [str(python), "-c", IMPORT_PROBE],
            cwd=repo,
            env=rank_env(cfg),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InferenceError(f"`infer.cosmos.python` = {python}: cannot run it: {e}") from e
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {proc.returncode}"
        raise InferenceError(
            f"`infer.cosmos.python` = {python} cannot import the Cosmos code of {repo} ({why}); set up the checkout "
            f"(`uv sync`, {SETUP_DOC}) or set `infer.cosmos.python` to the interpreter of its environment"
        )
    return proc.stdout.split()[0] if proc.stdout.strip() else ""


def engine_program(cfg: InferConfig, spec_path: Path, out_dir: Path) -> list[str]:
    """What every rank runs, in torchrun's ``-m module args…`` form."""
    spec_path, out_dir = Path(spec_path).absolute(), Path(out_dir).absolute()
    if cfg.engine == "preview":
        return ["-m", PREVIEW_MODULE, "-i", str(spec_path), "-o", str(out_dir), "--backend", cfg.backend]
    if cfg.engine == "cosmos":
        program = ["-m", COSMOS_MODULE, "-i", str(spec_path), "-o", str(out_dir)]
        program.append(f"--context-parallel-size={cfg.nproc_per_node}")
        program += COSMOS_FLAGS
        checkpoint = resolved_checkpoint(cfg)
        if checkpoint:
            program.append(f"--checkpoint-path={checkpoint}")
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

    ``cosmos`` runs in ``cfg.cosmos.repo_dir`` with :func:`cosmos_python`; ``preview`` with the
    current interpreter in ``out_dir``'s parent. Per-rank logs go to ``log_dir`` (``--tee 3``).
    """
    if cfg.engine == "cosmos":
        cwd = cosmos_repo(cfg)
        python = str(cosmos_python(cfg))
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

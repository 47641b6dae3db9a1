"""Run one inference launch: preflight → torchrun → check the outputs → publish.

:func:`run_inference` checks the spec before anything starts (:mod:`.preflight`), launches the
engine's torchrun (:mod:`.engines`, :mod:`.launcher`) into a temporary folder next to ``out_dir``,
checks that every file Cosmos would write is there (``docs/cosmos.md``, "Outputs") and
only then renames the folder to ``out_dir``. A failed launch leaves ``out_dir`` untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scene2world.atomic import STAGING, replace_folder, temporary_path
from scene2world.cache import LOGS_DIR  # torchrun's per-rank logs and torchrun.log, under the output folder
from scene2world.config import InferConfig
from scene2world.errors import InferenceError
from scene2world.inference.engines import check_cosmos, engine_command
from scene2world.inference.launcher import DEFAULT_GRACE_S, launch
from scene2world.inference.preflight import Plan, describe, preflight


@dataclass(frozen=True)
class SampleOutputs:
    """The files one sample produced (absolute paths inside the output folder)."""

    name: str
    json: Path
    views: dict[str, Path] = field(default_factory=dict)
    grid: Path | None = None
    combined: Path | None = None

    def files(self) -> list[Path]:
        """Every file of the sample."""
        extra = [p for p in (self.grid, self.combined) if p is not None]
        return [self.json, *self.views.values(), *extra]


@dataclass(frozen=True)
class InferenceResult:
    """What a launch produced; ``dry_run`` results hold the command only."""

    spec_path: Path
    out_dir: Path
    engine: str
    plan: Plan
    command: str
    samples: dict[str, SampleOutputs] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    logs: tuple[Path, ...] = ()
    returncode: int | None = None
    duration_s: float = 0.0
    dry_run: bool = False

    @property
    def outputs(self) -> dict[str, dict[str, Path]]:
        """Sample name → view key → per-view mp4 (empty for combined-view samples)."""
        return {name: dict(s.views) for name, s in self.samples.items()}

    @property
    def grids(self) -> dict[str, Path]:
        """Sample name → ``<name>_grid.mp4``."""
        return {name: s.grid for name, s in self.samples.items() if s.grid is not None}

    @property
    def combined(self) -> dict[str, Path]:
        """Sample name → ``<name>.mp4`` (time-concatenated views)."""
        return {name: s.combined for name, s in self.samples.items() if s.combined is not None}

    @property
    def warnings(self) -> tuple[str, ...]:
        """Preflight warnings (clamped chunks, spec Cosmos would refuse on this rank count, …)."""
        return self.plan.warnings


def _sample_outputs(plan: Plan, out_dir: Path) -> dict[str, SampleOutputs]:
    out = {}
    for s in plan.samples:
        if s.save_combined_views:
            out[s.name] = SampleOutputs(s.name, out_dir / f"{s.name}.json", combined=out_dir / f"{s.name}.mp4")
        else:
            views = {v: out_dir / f"{s.name}_{v}.mp4" for v in s.views}
            out[s.name] = SampleOutputs(s.name, out_dir / f"{s.name}.json", views, grid=out_dir / f"{s.name}_grid.mp4")
    return out


GUARDRAIL_MARKERS = ("guardrail", "blocked by", "content safety")
"""Words of the lines Cosmos logs when its guardrails block a prompt or a video (case-insensitive)."""


def guardrail_lines(log_tail: str) -> list[str]:
    """The lines of a launch's log tail that report a guardrail block (to lead the error message)."""
    return [
        line.strip()
        for line in log_tail.splitlines()
        if any(m in line.lower() for m in GUARDRAIL_MARKERS) and ("block" in line.lower() or "unsafe" in line.lower())
    ]


def run_inference(
    spec_path: Path,
    out_dir: Path,
    cfg: InferConfig,
    log: Callable[[str], None] | None = None,
    *,
    dry_run: bool = False,
    grace_s: float = DEFAULT_GRACE_S,
    keep_failed: Path | None = None,
) -> InferenceResult:
    """Check ``spec_path``, run ``cfg.engine`` under torchrun and publish its files as ``out_dir``.

    Args:
        spec_path: a Cosmos ``.json``/``.jsonl`` spec (relative paths from its folder).
        out_dir: the output folder; replaced atomically on success, untouched on failure.
        cfg: engine, rank count, timeout and (for ``cosmos``) the checkout and checkpoint.
        log: receives the plan summary, the warnings and every torchrun output line.
        dry_run: check and plan only; the result's ``command`` is what would run.
        grace_s: seconds between SIGTERM and SIGKILL when the launch is stopped.
        keep_failed: where a failed launch's files and logs are moved (default: left beside ``out_dir``),
            e.g. outside a staging folder that is about to be removed.

    Raises:
        InferenceError: a spec problem (before launching), a failed or timed-out launch, or
            missing output files.
    """
    emit = log if log is not None else (lambda line: None)
    spec_path = Path(spec_path).absolute()
    out_dir = Path(out_dir).absolute()
    plan = preflight(spec_path, cfg)
    if cfg.engine == "cosmos":
        setup = check_cosmos(cfg, imports=not dry_run)
        emit(f"cosmos: checkout {setup.repo}, interpreter {setup.python} (torch {setup.torch_version or '?'})")
    for line in describe(plan):
        emit(line)
    for warning in plan.warnings:
        emit(f"warning: {warning}")
    if dry_run:
        cmd = engine_command(cfg, spec_path, out_dir, log_dir=out_dir / LOGS_DIR)
        return InferenceResult(spec_path, out_dir, cfg.engine, plan, cmd.render(), dry_run=True)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = temporary_path(out_dir, STAGING)
    stage.mkdir()
    cmd = engine_command(cfg, spec_path, stage, log_dir=stage / LOGS_DIR)
    t0 = time.monotonic()
    try:
        launched = launch(cmd, log=log, timeout_s=cfg.timeout_s, grace_s=grace_s, hang_timeout_s=cfg.hang_timeout_s)
        missing = [name for name in plan.output_files() if not (stage / name).is_file()]
        if missing:
            raise InferenceError(
                f"engine `{cfg.engine}` exited 0 but did not write {', '.join(missing)} into {stage}",
                returncode=launched.returncode,
                argv=list(cmd.argv),
                log_tail=launched.log_tail,
            )
        replace_folder(stage, out_dir)
    except InferenceError as e:
        blocked = guardrail_lines(e.log_tail or "")
        head = f"a guardrail blocked a sample: {blocked[-1]}\n" if blocked else ""
        left = stage
        if keep_failed is not None:
            with contextlib.suppress(OSError):
                keep_failed.parent.mkdir(parents=True, exist_ok=True)
                os.replace(stage, keep_failed)
                left = keep_failed
        raise InferenceError(
            f"{head}{e}\n(the failed run's files and logs are left in {left})",
            returncode=e.returncode,
            argv=e.argv,
            log_tail=e.log_tail,
        ) from e
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(stage)
        raise
    files = tuple(sorted(p for p in out_dir.rglob("*") if p.is_file()))
    logs = tuple(p for p in files if p.relative_to(out_dir).parts[0] == LOGS_DIR or p.suffix == ".log")
    return InferenceResult(
        spec_path=spec_path,
        out_dir=out_dir,
        engine=cfg.engine,
        plan=plan,
        command=launched.command.replace(str(stage), str(out_dir)),
        samples=_sample_outputs(plan, out_dir),
        files=files,
        logs=logs,
        returncode=launched.returncode,
        duration_s=time.monotonic() - t0,
    )

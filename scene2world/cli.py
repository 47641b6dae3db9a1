"""The ``scene2world`` command: the pipeline as one flow, and each step on its own.

Every command prints the path of the manifest it wrote as its last line and exits 0; a user
error (bad input, bad option, unmet requirement) prints one line and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from scene2world import __version__
from scene2world.errors import RenderCancelledError, Scene2WorldError
from scene2world.stopping import Stopped, exit_code, received, signal_name, signals_raise

if TYPE_CHECKING:
    from rich.progress import Progress

    from scene2world.config import PipelineConfig

EXIT_USER_ERROR = 2
log = logging.getLogger("scene2world")


def _setup_env() -> None:
    """Headless GL and quiet Prefect defaults; the user's own settings win."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    os.environ.setdefault("PYGLET_HEADLESS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    if home := os.environ.get("PREFECT_HOME"):  # Prefect creates only the last folder of it
        Path(home).expanduser().mkdir(parents=True, exist_ok=True)


def _config(args: argparse.Namespace) -> PipelineConfig:
    from scene2world.config import load_config

    return load_config(Path(args.config) if args.config else None, args.set or [])


def _progress(description: str) -> Progress:
    """A rich progress bar on stderr (a no-op context when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def cmd_run(args: argparse.Namespace) -> Path:
    """The whole pipeline as one Prefect flow."""
    from rich.console import Console
    from rich.table import Table

    from scene2world.flows.hooks import hide_user_error_echoes
    from scene2world.flows.pipeline import run_pipeline
    from scene2world.prefect_server import api_server

    cfg = _config(args)
    _no_tracebacks_for_user_errors()
    hide_user_error_echoes()  # main() prints a user error once, last
    with api_server():  # outlives the flow, so a stopped flow can still record how it ended
        summary = run_pipeline(cfg)
    table = Table(title=f"scene2world run `{summary['name']}`")
    for col in ("step", "status", "manifest"):
        table.add_column(col)
    for step in summary["steps"]:
        table.add_row(step["step"], step["status"], step["manifest"])
    console = Console(stderr=True)
    console.print(table)
    if all(s["status"] == "cached" for s in summary["steps"]):
        console.print("every step was a cache hit: nothing re-ran")
    console.print(f"run folder: {summary['run_dir']}")
    return Path(summary["manifest"])


def _no_tracebacks_for_user_errors() -> None:
    from scene2world.flows.hooks import install_user_error_filter

    install_user_error_filter()


def cmd_download(args: argparse.Namespace) -> Path:
    """Fetch/copy/extract a dataset and discover its clips."""
    from scene2world.datasets.step import run_download

    cfg = _config(args)
    dl = cfg.download.model_copy(update={"source": args.source, "sha256": args.sha256 or cfg.download.sha256})
    result = run_download(dl, datasets=cfg.datasets, data_root=cfg.data_root, out_dir=args.out)
    _say_hit(result)
    return result.manifest_path


def cmd_render(args: argparse.Namespace) -> Path:
    """Render control videos for every clip under INPUT (a folder or a download manifest)."""
    from scene2world.config import updated
    from scene2world.renderer.step import resolve_input, run_render

    cfg = _config(args)
    update: dict[str, Any] = {}
    if args.cameras is not None:
        update["cameras"] = _camera_list(args.cameras)
    for name in ("frames", "look", "msaa", "line_caps", "device", "preset", "workers"):
        value = getattr(args, name)
        if value is not None:
            update[name] = value
    if args.png:
        update["png"] = True
    render_cfg = updated(cfg.render, update, "command line")
    source = resolve_input(Path(args.input))
    with _progress("rendering") as bar:
        task = bar.add_task("render", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_render(render_cfg, source, data_root=cfg.data_root, out_dir=args.out, progress=progress)
    _say_hit(result)
    return result.manifest_path


def _camera_list(text: str) -> list[str]:
    """``--cameras A,B``: names in order, each once; ConfigError when none is given."""
    from scene2world.errors import ConfigError

    names = list(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not names:
        raise ConfigError(
            f"--cameras {text!r}: no camera name given; pass comma-separated names, e.g. camera_front_wide_120fov"
        )
    return names


def cmd_infer(args: argparse.Namespace) -> Path:
    """Run inference on a render manifest, or on a Cosmos spec file as is."""
    from scene2world.config import updated

    cfg = _config(args)
    update: dict[str, Any] = {}
    if args.engine:
        update["engine"] = args.engine
    if args.nproc is not None:
        update["nproc_per_node"] = args.nproc
    infer_cfg = updated(cfg.infer, update, "command line")
    target = Path(args.spec_or_manifest)

    def echo(line: str) -> None:
        print(line, file=sys.stderr)

    if target.suffix in (".json", ".jsonl") and target.name != "manifest.json":
        from scene2world.inference.standalone import infer_spec

        return infer_spec(target, infer_cfg, out_dir=args.out, data_root=cfg.data_root, log_line=echo)
    from scene2world.inference.step import run_infer

    result = run_infer(infer_cfg, target, data_root=cfg.data_root, out_dir=args.out, log_line=echo)
    _say_hit(result)
    stats = result.manifest.stats
    if not result.cache_hit and "inferred_samples" in stats:
        echo(f"infer: {stats['inferred_samples']} sample(s) inferred, {stats['reused_samples']} reused")
    return result.manifest_path


def cmd_package(args: argparse.Namespace) -> Path:
    """Assemble a run folder from an infer manifest (its render manifest is found through it)."""
    from scene2world.manifest import read_manifest
    from scene2world.packaging.step import run_package

    cfg = _config(args)
    infer_manifest = read_manifest(Path(args.manifest))
    if infer_manifest.step != "infer" or infer_manifest.upstream is None:
        raise Scene2WorldError(f"{args.manifest}: package takes the manifest written by `scene2world infer`")
    render_manifest = Path(infer_manifest.upstream.manifest_path)
    info = {"name": cfg.name, "source": cfg.download.source, "config": cfg.model_dump(mode="json")}
    result = run_package(
        cfg.package,
        render_manifest,
        Path(args.manifest),
        runs_dir=cfg.runs_dir,
        name=cfg.name,
        info=info,
        out_dir=args.out,
    )
    _say_hit(result)
    return result.manifest_path


def cmd_verify(args: argparse.Namespace) -> Path:
    """Check every file of a run folder (and its archive) against its manifest."""
    from scene2world.manifest import MANIFEST_NAME
    from scene2world.packaging.verify import verify_run

    folder = Path(args.run_dir)
    problems = verify_run(folder)
    if problems:
        for p in problems:
            print(f"{folder}: {p}", file=sys.stderr)
        raise Scene2WorldError(f"{folder}: {len(problems)} problem(s) against {MANIFEST_NAME}: {problems[0]}")
    print(f"{folder}: every file matches {MANIFEST_NAME}", file=sys.stderr)
    return folder / MANIFEST_NAME


def cmd_doctor(args: argparse.Namespace) -> str:
    """Check this machine for the configured pipeline: one line per check, exit 2 when one fails."""
    from scene2world.doctor import can_run, run_checks

    cfg = _config(args)
    checks = run_checks(cfg)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if c.status == "FAIL"]
    if failed:
        raise Scene2WorldError(
            f"{len(failed)} check(s) failed, the configured pipeline cannot run here: "
            + "; ".join(f"{c.name}: {c.fix or c.detail}" for c in failed)
        )
    assert can_run(checks)
    return f"doctor: the configured pipeline (engine {cfg.infer.engine}) can run on this machine"


def cmd_serve(args: argparse.Namespace) -> Path:
    """Serve the deployments of prefect.yaml (with their schedules) from this process, without a work pool."""
    from scene2world.flows.checkout import HOME_ENV, enter_checkout
    from scene2world.flows.serving import serve_file

    enter_checkout(os.environ.get(HOME_ENV))  # the flows' relative paths resolve in the checkout
    _no_tracebacks_for_user_errors()
    path = Path("prefect.yaml").absolute()
    serve_file(path, only=args.only or None, schedules=not args.no_schedules)
    return path


def _say_hit(result: Any) -> None:
    if result.cache_hit:
        print(f"{result.manifest.step}: cache hit, nothing to do", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from scene2world.config import DEFAULT_PRESET, Device, Engine, LineCaps, Look, Msaa, X264Preset

    parser = argparse.ArgumentParser(prog="scene2world", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"scene2world {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="pipeline config YAML (default: built-in defaults)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. render.msaa=1")
        return p

    p = with_config(sub.add_parser("run", help="the whole pipeline as one Prefect flow"))
    p.set_defaults(func=cmd_run)

    p = with_config(sub.add_parser("download", help="fetch a dataset and discover its clips"))
    p.add_argument("source", help="dataset name, URL, archive or folder")
    p.add_argument("--out", type=Path, help="output folder (default: the data root's cache)")
    p.add_argument("--sha256", help="expected sha256 of a downloaded archive")
    p.set_defaults(func=cmd_download)

    p = with_config(sub.add_parser("render", help="render world-scenario control videos"))
    p.add_argument("input", help="folder of clips (ClipGT or RDS-HQ) or a download manifest")
    p.add_argument("--out", type=Path, help="output folder (default: the data root's cache)")
    p.add_argument("--cameras", help="comma-separated camera names, e.g. camera_front_wide_120fov")
    p.add_argument("--frames", help="half-open range START:END of the 30 fps timeline")
    p.add_argument("--look", choices=get_args(Look))
    p.add_argument("--msaa", type=int, choices=get_args(Msaa))
    p.add_argument(
        "--line-caps", choices=get_args(LineCaps), help="culled (default, fast) or all: NVIDIA's triangles exactly"
    )
    p.add_argument("--device", choices=get_args(Device))
    p.add_argument(
        "--preset", choices=get_args(X264Preset), metavar="PRESET", help=f"libx264 preset (default {DEFAULT_PRESET})"
    )
    p.add_argument("--workers", type=int, help="render processes (0 = one per core)")
    p.add_argument("--png", action="store_true", help="lossless PNG frames instead of mp4")
    p.set_defaults(func=cmd_render)

    p = with_config(sub.add_parser("infer", help="run Cosmos (or the preview engine) under torchrun"))
    p.add_argument("spec_or_manifest", help="a render manifest, or a Cosmos spec .json/.jsonl")
    p.add_argument("--out", type=Path, help="output folder (default: the data root's cache)")
    p.add_argument("--engine", choices=get_args(Engine))
    p.add_argument("--nproc", type=int, help="torchrun --nproc_per_node")
    p.set_defaults(func=cmd_infer)

    p = with_config(sub.add_parser("package", help="assemble a run folder from an infer manifest"))
    p.add_argument("manifest", help="the manifest written by `scene2world infer`")
    p.add_argument("--out", type=Path, help="run folder (default: <runs_dir>/<name>-<key>)")
    p.set_defaults(func=cmd_package)

    p = with_config(sub.add_parser("doctor", help="can this machine run the configured pipeline?"))
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("verify", help="check a run folder against its manifest")
    p.add_argument("run_dir", help="a run folder (or any step output folder)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("serve", help="serve the deployments of prefect.yaml (and their schedules) from this process")
    p.add_argument("--only", action="append", metavar="NAME", help="serve only this deployment (repeatable)")
    p.add_argument("--no-schedules", action="store_true", help="serve without the schedules (runs on demand only)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scene2world`` command."""
    _setup_env()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        with signals_raise():
            manifest = args.func(args)
    except BaseException as e:
        signum = _stop_signal(e)
        if signum is not None:
            print(
                f"scene2world {args.command}: stopped by {signal_name(signum)}; nothing half-written was kept",
                file=sys.stderr,
            )
            return exit_code(signum)
        if isinstance(e, Scene2WorldError):
            print(f"scene2world {args.command}: error: {_one_line(str(e))}", file=sys.stderr)
            return EXIT_USER_ERROR
        raise
    print(manifest)
    return 0


def _stop_signal(e: BaseException) -> int | None:
    """The signal that stopped the command, when ``e`` comes from one (Ctrl-C, SIGTERM, a cancelled render)."""
    if received() is not None:
        return received()
    if isinstance(e, Stopped):
        return e.signum
    if isinstance(e, KeyboardInterrupt | RenderCancelledError):
        return signal.SIGINT
    signum = getattr(e, "signal", None)  # Prefect's TerminationSignal
    return int(signum) if isinstance(signum, int) else None


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] + (f" (and {len(lines) - 1} more: {'; '.join(lines[1:4])})" if len(lines) > 1 else "")


if __name__ == "__main__":
    sys.exit(main())

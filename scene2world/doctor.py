"""``scene2world doctor``: can this machine run the configured pipeline? One line per check.

Every check returns a :class:`Check` with a status (``ok``, ``FAIL``, ``warn``, ``skip``), what it
found and, for a failure or a warning, the fix. A failure is only reported for something the
configured pipeline needs (the GPU EGL device is not needed with ``render.device: cpu``; NVENC is
never needed), so :func:`can_run` (exit 0) means every step of the configured pipeline can start.
The checks and their fixes are described in ``docs/cosmos.md`` (``Checking a machine``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from scene2world.config import CAMERA_NAMES, PipelineConfig
from scene2world.errors import Scene2WorldError

Status = Literal["ok", "FAIL", "warn", "skip"]

GiB = 1024**3
MIN_FREE_BYTES = {"preview": 2 * GiB, "cosmos": 50 * GiB}
"""Free space wanted under ``data_root``: control videos and previews; with ``cosmos`` also generated
videos and, where ``HF_HOME`` lies there, the model, text encoder and guardrail weights."""
PROBE_TIMEOUT_S = 180.0
"""Time allowed to each subprocess probe (EGL context, ffmpeg encode, Cosmos imports)."""
HTTP_TIMEOUT_S = 5.0
COSMOS_HF_REPO = "nvidia/Cosmos-Transfer2.5-2B"
"""Where NVIDIA's default multiview checkpoint is downloaded from (into the Hugging Face cache)."""


@dataclass(frozen=True)
class Check:
    """The outcome of one check."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def line(self) -> str:
        """``ok    name: detail`` or ``FAIL  name: detail; fix: ...``."""
        fix = f"; fix: {self.fix}" if self.fix and self.status in ("FAIL", "warn") else ""
        return f"{self.status:<5} {self.name}: {self.detail}{fix}"


def can_run(checks: Iterable[Check]) -> bool:
    """True when no check failed."""
    return all(c.status != "FAIL" for c in checks)


# ---------------------------------------------------------------------------------------------- rendering


_EGL_PROBE = (
    "from scene2world.cli import _setup_env\n"
    "_setup_env()\n"
    "from scene2world.renderer.gl import create_offscreen\n"
    "r = create_offscreen(64, 36, samples=1, device={device!r})\n"
    "print(r.renderer_name)\n"
    "r.delete()\n"
)


def _run_probe(argv: list[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """(exit status, stdout + stderr) of a probe subprocess; 127/124 when it cannot start or times out."""
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except OSError as e:
        return 127, str(e)
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {PROBE_TIMEOUT_S:g} s"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no output)"


def check_egl(device: Literal["cpu", "gpu"], render_device: str) -> Check:
    """An EGL OpenGL context on ``device`` (in a subprocess: a crashing driver cannot take doctor down)."""
    name = f"egl ({device})"
    needed = render_device == device
    if render_device not in ("auto", device):
        return Check(name, "skip", f"not needed (render.device = {render_device})")
    code, out = _run_probe([sys.executable, "-c", _EGL_PROBE.format(device=device)])
    if code == 0:
        return Check(name, "ok", f"pyrender renders on {_last_line(out)}")
    why = _last_line(out).removeprefix("scene2world.errors.RenderError: ")
    if device == "cpu":
        fix = "install Mesa's EGL and llvmpipe: apt-get install libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri"
    else:
        fix = "make NVIDIA's EGL driver visible (docs/gpu.md: glvnd loaders, __EGL_VENDOR_LIBRARY_FILENAMES)"
    if needed:
        return Check(name, "FAIL", f"{why} (render.device = {device})", fix)
    status: Status = "warn" if render_device == "auto" else "skip"
    return Check(name, status, f"not usable: {why} (render.device = {render_device} does not need it)", fix)


_KERNELS_PROBE = (
    "import time\n"
    "t = time.perf_counter()\n"
    "import numba, numpy as np\n"
    "from scene2world.renderer.camera import FThetaCamera\n"
    "from scene2world.renderer.lines import expand_lines\n"
    "from scene2world.renderer.projection import project_segment_ends\n"
    "from scene2world.scene.synthetic import DOC_FTHETA\n"
    "camera = FThetaCamera.from_intrinsics(DOC_FTHETA)\n"
    "points = np.array([[0.0, 1.0, 5.0], [0.5, 1.0, 8.0], [1.0, 1.0, 11.0]])\n"
    "uvz0, uvz1, _ = project_segment_ends(camera, points, np.array([[0, 1], [1, 2]]), 1e-3, 200.0)\n"
    "lines = expand_lines(uvz0, uvz1, np.ones((2, 3)), np.ones((2, 3)), 12, 1280, 720)\n"
    "assert len(lines.faces) > 0\n"
    "from scene2world.renderer.tiles import drawn_tiles, tile_rects\n"
    "tiles = drawn_tiles(lines.vertices_px, lines.faces.astype(np.uint32), 1280, 720, 32)\n"
    "assert len(tile_rects(tiles, 1280, 720, 32)) > 0\n"
    "print(f'numba {numba.__version__}, ready in {time.perf_counter() - t:.1f} s')\n"
)


def check_geometry_kernels(env: Mapping[str, str] | None = None) -> Check:
    """The renderer's compiled geometry (numba) loads and runs, in a subprocess; on a fresh machine
    this also compiles it into numba's cache, so that render processes start without compiling."""
    name = "compiled geometry"
    code, out = _run_probe([sys.executable, "-c", _KERNELS_PROBE], env=env)
    if code == 0:
        return Check(name, "ok", _last_line(out))
    fix = "pip install 'numba>=0.60' (it brings llvmlite; docs/install.md)"
    return Check(name, "FAIL", f"the line, projection and tile kernels do not run: {_last_line(out)}", fix)


def check_render_device(results: Mapping[str, Check], render_device: str) -> Check | None:
    """With ``render.device: auto``, one of the two EGL devices must work."""
    if render_device != "auto":
        return None
    if any(c.status == "ok" for c in results.values()):
        return Check("egl (auto)", "ok", "render.device = auto has an EGL device")
    return Check(
        "egl (auto)",
        "FAIL",
        "neither the CPU nor the GPU EGL device works",
        "install Mesa's EGL (CPU) or make NVIDIA's EGL visible (docs/gpu.md)",
    )


def check_ffmpeg() -> list[Check]:
    """Ffmpeg (imageio-ffmpeg's binary) encodes H.264 with libx264; NVENC is reported when present."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as e:
        return [Check("ffmpeg", "FAIL", f"no ffmpeg: {e}", "pip install imageio-ffmpeg, or set IMAGEIO_FFMPEG_EXE")]
    checks = []
    test = ["-f", "lavfi", "-i", "color=c=black:s=256x144:d=0.2", "-frames:v", "3", "-f", "null", "-"]
    code, out = _run_probe([exe, "-hide_banner", "-loglevel", "error", *test[:6], "-c:v", "libx264", *test[6:]])
    if code == 0:
        checks.append(Check("ffmpeg libx264", "ok", f"{exe} encodes H.264 with libx264"))
    else:
        checks.append(
            Check(
                "ffmpeg libx264",
                "FAIL",
                f"{exe} cannot encode with libx264: {_last_line(out)}",
                "use an ffmpeg built with libx264 (imageio-ffmpeg's binary has it) via IMAGEIO_FFMPEG_EXE",
            )
        )
    code, out = _run_probe([exe, "-hide_banner", "-encoders"])
    if "h264_nvenc" not in out:
        checks.append(Check("ffmpeg nvenc", "skip", "this ffmpeg has no h264_nvenc encoder (not needed)"))
        return checks
    code, out = _run_probe([exe, "-hide_banner", "-loglevel", "error", *test[:6], "-c:v", "h264_nvenc", *test[6:]])
    if code == 0:
        checks.append(Check("ffmpeg nvenc", "ok", "h264_nvenc encodes on this machine"))
    else:
        checks.append(
            Check(
                "ffmpeg nvenc",
                "warn",
                f"h264_nvenc is built in but does not run: {_first_line(out)} (not needed: libx264 is used)",
                "an NVIDIA GPU and driver with NVENC are needed for it",
            )
        )
    return checks


# ---------------------------------------------------------------------------------------------- inference


def cuda_devices() -> tuple[str, int]:
    """(torch version, CUDA devices visible to scene2world's own torch)."""
    import torch

    return str(torch.__version__), int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def check_torch(cfg: PipelineConfig, devices: Callable[[], tuple[str, int]] = cuda_devices) -> Check:
    """scene2world's torch and its CUDA devices against ``infer.nproc_per_node`` (preview engine)."""
    infer = cfg.infer
    try:
        version, count = devices()
    except ImportError as e:
        return Check("torch", "FAIL", f"cannot import torch: {e}", "reinstall scene2world (pip install scene2world)")
    what = f"torch {version}, {count} CUDA device(s) visible"
    if infer.engine == "cosmos":
        return Check("torch", "ok", f"{what} (the cosmos ranks use the Cosmos environment's torch)")
    nccl = infer.backend == "nccl" or (infer.backend == "auto" and count > 0)
    if not nccl:
        return Check("torch", "ok", f"{what}; preview ranks run on CPU (gloo)")
    if count < infer.nproc_per_node:
        return Check(
            "torch",
            "FAIL",
            f"{what}, but infer.nproc_per_node = {infer.nproc_per_node} ranks need one GPU each (backend nccl)",
            f"set infer.nproc_per_node to at most {count}"
            + (" or infer.backend=gloo" if count == 0 or infer.backend == "auto" else ""),
        )
    return Check("torch", "ok", f"{what} for {infer.nproc_per_node} NCCL rank(s)")


def check_views(cfg: PipelineConfig) -> Check:
    """The GPU plan: Cosmos's rank rule for the configured views, and enough control frames for a chunk."""
    from scene2world.inference.preflight import CHUNK_FRAMES, cosmos_rank_problem, cosmos_ranks_for
    from scene2world.inference.views import canonical, view_for_camera

    infer = cfg.infer
    # render.cameras unset = each clip's own rig; plan for the full 7-camera rig, the most a clip has
    cameras = cfg.render.cameras if cfg.render.cameras is not None else CAMERA_NAMES
    views = canonical({view_for_camera(cam).key for cam in cameras})
    need_frames = CHUNK_FRAMES * (30 // infer.fps) if 30 % infer.fps == 0 else None
    if need_frames is None:
        return Check("gpu plan", "FAIL", f"infer.fps = {infer.fps} does not divide 30", "use 10 (or 5, 15, 30)")
    if cfg.render.frames:
        start, _, end = cfg.render.frames.partition(":")
        if end and int(end) - int(start or 0) < need_frames:
            return Check(
                "gpu plan",
                "FAIL",
                f"render.frames = {cfg.render.frames} gives {int(end) - int(start or 0)} control frames; "
                f"a chunk at fps {infer.fps} reads {need_frames}",
                f"render at least {need_frames} frames or raise infer.fps",
            )
    problem = cosmos_rank_problem(len(views), infer.nproc_per_node)
    plan = f"{len(views)} view(s) ({', '.join(views)}) on {infer.nproc_per_node} rank(s)"
    if problem is None:
        return Check("gpu plan", "ok", f"{plan}: Cosmos accepts it")
    fix = f"set infer.nproc_per_node={cosmos_ranks_for(len(views))} (Cosmos runs on 1, 2, 4 or 8 ranks, one view each)"
    if infer.engine == "cosmos":
        return Check("gpu plan", "FAIL", f"{plan}: {problem}", fix)
    return Check("gpu plan", "warn", f"{plan}: fine for preview, but Cosmos would refuse it: {problem}", fix)


def _hf_hub_cache(environ: Mapping[str, str]) -> Path:
    if environ.get("HF_HUB_CACHE"):
        return Path(environ["HF_HUB_CACHE"]).expanduser()
    home = environ.get("HF_HOME") or str(Path(environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface")
    return Path(home).expanduser() / "hub"


def check_cosmos(cfg: PipelineConfig, environ: Mapping[str, str] | None = None) -> list[Check]:
    """The cosmos engine: checkout, interpreter, imports and GPUs seen by its torch, checkpoint or HF cache."""
    from scene2world.inference import engines
    from scene2world.inference.preflight import COSMOS_RANK_COUNTS

    environ = os.environ if environ is None else environ
    infer = cfg.infer
    checks: list[Check] = []
    try:
        repo = engines.cosmos_repo(infer)
    except Scene2WorldError as e:
        fix = f"clone {engines.COSMOS_REPO_URL}, run `uv sync` in it (docs/cosmos.md), set infer.cosmos.repo_dir"
        return [Check("cosmos checkout", "FAIL", _first_part(str(e)), fix)]
    checks.append(Check("cosmos checkout", "ok", f"{repo} has examples/multiview.py"))
    try:
        python = engines.cosmos_python(infer)
    except Scene2WorldError as e:
        fix = "run `uv sync` in the checkout (docs/cosmos.md) or set infer.cosmos.python to its environment's python"
        return [*checks, Check("cosmos interpreter", "FAIL", _first_part(str(e)), fix)]
    checks.append(Check("cosmos interpreter", "ok", str(python)))
    code, out = _run_probe(
        [str(python), "-c", engines.IMPORT_PROBE], cwd=repo, env=engines.rank_env(infer, environ=environ)
    )
    if code != 0:
        checks.append(
            Check(
                "cosmos imports",
                "FAIL",
                f"{python} cannot import torch/cosmos_transfer2/examples.multiview: {_last_line(out)}",
                "run `uv sync` in the checkout (docs/cosmos.md) or set infer.cosmos.python to its environment's python",
            )
        )
    else:
        version, _, count_text = _last_line(out).partition(" ")
        count = int(count_text) if count_text.isdigit() else 0
        checks.append(Check("cosmos imports", "ok", f"torch {version} and cosmos_transfer2 import in {repo}"))
        nproc = infer.nproc_per_node
        if count < nproc:
            usable = max([n for n in COSMOS_RANK_COUNTS if n <= count], default=0)
            checks.append(
                Check(
                    "cosmos gpus",
                    "FAIL",
                    f"infer.nproc_per_node = {nproc} but the Cosmos torch sees {count} CUDA device(s)",
                    f"set infer.nproc_per_node={usable}"
                    if usable
                    else "run on a machine with NVIDIA GPUs (check CUDA_VISIBLE_DEVICES and nvidia-smi)",
                )
            )
        else:
            checks.append(Check("cosmos gpus", "ok", f"{count} CUDA device(s) for {nproc} rank(s)"))
    checks.append(_check_checkpoint(cfg, environ))
    return checks


def _first_part(message: str) -> str:
    """What an engine error found, without the fix it proposes (after ``: clone`` or ``; ``)."""
    return message.split("; ", 1)[0].split(": clone ", 1)[0]


def _check_checkpoint(cfg: PipelineConfig, environ: Mapping[str, str]) -> Check:
    from scene2world.inference.engines import resolved_checkpoint

    checkpoint = resolved_checkpoint(cfg.infer)
    if checkpoint is not None:
        if "://" in checkpoint:
            return Check("cosmos checkpoint", "ok", f"{checkpoint} (a URI: fetched by Cosmos at start)")
        if Path(checkpoint).is_file():
            return Check("cosmos checkpoint", "ok", checkpoint)
        return Check(
            "cosmos checkpoint",
            "FAIL",
            f"infer.cosmos.checkpoint_path: no file at {checkpoint}",
            "fix the path (relative paths are taken from the current directory) or unset it for the default model",
        )
    cache = _hf_hub_cache(environ)
    folder = cache / f"models--{COSMOS_HF_REPO.replace('/', '--')}"
    if folder.is_dir():
        return Check("cosmos checkpoint", "ok", f"{COSMOS_HF_REPO} is in the Hugging Face cache {cache}")
    offline = environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    token = bool(environ.get("HF_TOKEN")) or (cache.parent / "token").is_file()
    detail = f"{COSMOS_HF_REPO} is not in the Hugging Face cache {cache}"
    if offline:
        return Check(
            "cosmos checkpoint",
            "FAIL",
            f"{detail} and HF_HUB_OFFLINE is set",
            "copy the cache from a machine that downloaded it, or set infer.cosmos.checkpoint_path",
        )
    return Check(
        "cosmos checkpoint",
        "warn",
        f"{detail}: the first run downloads it" + ("" if token else " and no Hugging Face token was found"),
        "`hf auth login` (or HF_TOKEN) and accept the model licences on Hugging Face (docs/cosmos.md)",
    )


# ---------------------------------------------------------------------------------------------- machine


def check_disk(cfg: PipelineConfig) -> Check:
    """Free space (and write access) under ``data_root``."""
    root = Path(cfg.data_root).expanduser().absolute()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK):
        return Check("disk", "FAIL", f"{existing} is not writable (data_root = {root})", "choose a writable data_root")
    free = shutil.disk_usage(existing).free
    want = MIN_FREE_BYTES[cfg.infer.engine]
    what = f"{free / GiB:.1f} GiB free under {existing}"
    if free < want:
        return Check(
            "disk",
            "FAIL",
            f"{what}; the {cfg.infer.engine} engine wants {want / GiB:.0f} GiB",
            "free space or point data_root elsewhere",
        )
    return Check("disk", "ok", what)


def check_prefect(environ: Mapping[str, str] | None = None) -> Check:
    """The Prefect API answers at ``PREFECT_API_URL`` (skipped when unset: a temporary server is used)."""
    environ = os.environ if environ is None else environ
    url = environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        return Check("prefect api", "skip", "PREFECT_API_URL is not set: `scene2world run` starts a temporary server")
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=HTTP_TIMEOUT_S) as resp:
            status = resp.status
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return Check(
            "prefect api",
            "FAIL",
            f"{url} does not answer: {reason}",
            "start it (`prefect server start`) or fix/unset PREFECT_API_URL",
        )
    if status != 200:
        return Check("prefect api", "FAIL", f"{url}/health answered HTTP {status}", "check the server's logs")
    return Check("prefect api", "ok", f"{url} answers")


def run_checks(cfg: PipelineConfig, *, environ: Mapping[str, str] | None = None) -> list[Check]:
    """Every check for ``cfg`` on this machine, in the order of the pipeline."""
    environ = os.environ if environ is None else environ
    device = cfg.render.device
    egl = {d: check_egl(d, device) for d in ("cpu", "gpu")}  # type: ignore[arg-type]
    checks = list(egl.values())
    if (auto := check_render_device(egl, device)) is not None:
        checks.append(auto)
    checks.append(check_geometry_kernels())
    checks += check_ffmpeg()
    checks.append(check_torch(cfg))
    checks.append(check_views(cfg))
    if cfg.infer.engine == "cosmos":
        checks += check_cosmos(cfg, environ)
    checks.append(check_disk(cfg))
    checks.append(check_prefect(environ))
    return checks

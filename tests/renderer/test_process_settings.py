"""What every render process sets up before it draws: one BLAS thread, NVIDIA's driver waiting without a spin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from test_render import CAMS, BarBuilder, make_scene

from scene2world.renderer.render import render_clip

REPO = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from threadpoolctl import threadpool_info
    from scene2world.renderer.blas import one_blas_thread
    from scene2world.renderer.gl import configure_environment

    before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    one_blas_thread()
    after = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    a = np.random.default_rng(0).random((400, 400))
    a @ a  # a product big enough for OpenBLAS to use its pool
    configure_environment("cpu")
    print(json.dumps({"before": before, "after": after, "yield": os.environ.get("__GL_YIELD")}))
    """
)


def probe(**env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "2", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_render_process_runs_blas_on_one_thread_and_the_driver_sleeps_while_it_waits():
    got = probe()
    assert got["before"] and all(n == 2 for n in got["before"])  # numpy's OpenBLAS is seen, with its pool
    assert got["after"] == [1] * len(got["before"])
    assert got["yield"] == "USLEEP"


def test_a_driver_wait_the_user_exported_is_kept():
    assert probe(__GL_YIELD="NOTHING")["yield"] == "NOTHING"


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


class ProbeBuilder(BarBuilder):
    """BarBuilder that notes, in the render process, its BLAS threads and the driver's wait setting."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def prepare(self, scene, look):
        note = {"blas": _blas_threads(), "yield": os.environ.get("__GL_YIELD")}
        (self.folder / f"{os.getpid()}.json").write_text(json.dumps(note))
        return super().prepare(scene, look)


def test_render_clip_workers_and_render_pool_processes_are_set_up(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # a pool the processes must shrink, even on 1 core
    monkeypatch.delenv("__GL_YIELD", raising=False)
    notes = tmp_path / "notes"
    notes.mkdir()
    render_clip(
        make_scene(4),
        tmp_path / "out",
        cameras=CAMS[:2],
        msaa=1,
        device="cpu",
        workers=2,
        frame_builder=ProbeBuilder(notes),
        png=True,
    )
    seen = [json.loads(p.read_text()) for p in notes.iterdir()]
    assert len(seen) == 2 and os.getpid() not in {int(p.stem) for p in notes.iterdir()}
    for note in seen:
        assert note["blas"] and set(note["blas"]) == {1}
        assert note["yield"] == "USLEEP"

    from scene2world.renderer.pool import RenderPool

    pool = RenderPool(1)
    try:
        assert set(pool._executor.submit(_blas_threads).result(timeout=120)) == {1}
    finally:
        pool.close()

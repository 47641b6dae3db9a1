"""A fake cosmos-transfer2.5 checkout: no model, no weights, the parts scene2world depends on.

Its ``examples/multiview.py`` parses the arguments the way NVIDIA's tyro CLI does (``--no-keep-going``,
``--checkpoint-path``, ...; an unknown flag is an error), refuses to run outside torchrun, resolves a
relative checkpoint path from its own working folder (the checkout, as NVIDIA does), loads the spec with
the spec model's copy of NVIDIA's validation rules, rejects a seed NVIDIA's generator would reject, plays
a guardrail that blocks prompts containing ``BLOCK`` (rank 0 skips it with keep-going while the other
ranks wait in a "collective"), dumps its environment to ``env.json`` and writes Cosmos's output files.
"""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

MULTIVIEW = textwrap.dedent(
    """
    import argparse, json, os, shutil, sys, time
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="multiview.py")
    parser.add_argument("-i", "--input-files", "--input_files", nargs="+", required=True, type=Path)
    parser.add_argument("-o", "--output-dir", "--output_dir", required=True, type=Path)
    parser.add_argument("--model", default="auto/multiview")
    parser.add_argument("--checkpoint-path", "--checkpoint_path")
    parser.add_argument("--experiment")
    parser.add_argument("--context-parallel-size", "--context_parallel_size", type=int)
    parser.add_argument("--disable-guardrails", "--disable_guardrails", action="store_true")
    parser.add_argument("--offload-guardrail-models", "--offload_guardrail_models", action="store_true")
    parser.add_argument("--keep-going", "--keep_going", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    if "RANK" not in os.environ:
        sys.exit("multiview.py must run under torchrun")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if args.context_parallel_size not in (None, world):
        sys.exit(f"context parallel size {args.context_parallel_size} != world size {world}")
    if args.checkpoint_path and "://" not in args.checkpoint_path and not Path(args.checkpoint_path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {Path(args.checkpoint_path).absolute()}")

    from scene2world.inference.spec import load_spec

    samples = [s for f in args.input_files for s in load_spec(f)]
    out = args.output_dir
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "argv.json").write_text(json.dumps(sys.argv[1:]))
        (out / "env.json").write_text(json.dumps(dict(os.environ)))
        (out / "config.yaml").write_text("fake: true\\n")
        (out / "console.log").write_text("fake cosmos\\n")
    for s in samples:
        chunks = s.num_chunks if s.enable_autoregressive else 1
        if not 0 <= s.seed + chunks - 1 <= 2**32 - 1:
            raise ValueError("Seed must be between 0 and 2**32 - 1")
        if "BLOCK" in (s.prompt or "") and not args.disable_guardrails:
            if rank != 0:
                time.sleep(600)  # waiting in a collective for rank 0, up to NCCL's timeout
                continue
            message = f"Guardrail blocked generation. Prompt: {s.prompt}"  # NVIDIA's wording
            print(message, flush=True)
            if args.keep_going:
                continue
            raise RuntimeError(message)
        if rank != 0:
            continue
        (out / f"{s.name}.json").write_text(s.model_dump_json())
        views = s.active_views()
        first = getattr(s, views[0]).control_path
        if s.save_combined_views:
            shutil.copyfile(first, out / f"{s.name}.mp4")
        else:
            for v in views:
                shutil.copyfile(getattr(s, v).control_path, out / f"{s.name}_{v}.mp4")
            shutil.copyfile(first, out / f"{s.name}_grid.mp4")
        print(f"generated {s.name}", flush=True)
    """
)


def make_checkout(root: Path, *, venv: bool = True, package: bool = True) -> Path:
    """A fake checkout at ``root``: ``examples/multiview.py``, the ``cosmos_transfer2`` package (``package``)
    and a ``.venv/bin/python`` that runs this test interpreter (``venv``)."""
    (root / "examples").mkdir(parents=True)
    (root / "examples" / "__init__.py").write_text("")
    (root / "examples" / "multiview.py").write_text(MULTIVIEW)
    if package:
        (root / "cosmos_transfer2").mkdir()
        (root / "cosmos_transfer2" / "__init__.py").write_text("")
    if venv:
        python = root / ".venv" / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        python.chmod(python.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root

"""Write rendered frames as NVIDIA's control videos (mp4) or as lossless PNG frames.

- mp4: ``<out>/<clip_id>/<clip_id>.<camera>.mp4``, H.264 (libx264, CRF 18, preset slow,
  yuv420p, 30 fps; NVIDIA's ``imageio.get_writer(..., ffmpeg_params=["-crf", "18", "-preset",
  "slow"])``), encoded by imageio-ffmpeg's ffmpeg binary in its own process.
- PNG: ``<out>/<clip_id>/<camera>/<frame:06d>.png``, ``frame`` = the index on the clip's 30 fps
  timeline (so ``--frames 30:60`` writes 000030.png to 000059.png).

Both are atomic: frames go to a hidden temporary name in the same folder (``.<name>.partial-*``)
and are renamed to the final name only after the last frame was written and ffmpeg exited 0.
A failed or cancelled render removes its temporary file (:meth:`FrameWriter.abort`, also
called by ``__exit__`` on an exception), so no file that looks finished is ever partial.

Rendering and encoding overlap: :meth:`FrameWriter.write` only puts the frame on a bounded
queue; a thread feeds ffmpeg's stdin (or writes the PNGs), and ffmpeg encodes in its own
process, so neither side waits for the other unless the queue is full.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Literal

import numpy as np

from scene2world.errors import RenderError
from scene2world.model_constants import FRAME_RATE_HZ if False else None  # noqa: F401  # placeholder

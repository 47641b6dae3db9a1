"""Input checks shared by the renderer's geometry modules, and a loop-free ragged ``arange``."""

from __future__ import annotations

import numpy as np

from scene2world.errors import RenderError
from scene2world.typing import NDArrayInt


def check_finite(arr: np.ndarray, name: str) -> None:
    """RenderError naming ``name`` when ``arr`` holds NaN or infinite values."""
    if arr.size and not np.isfinite(arr).all():
        raise RenderError(f"`{name}` holds NaN or infinite values (shape {arr.shape})")


def as_array(arr: object, name: str, tail: tuple[int, ...], dtype: type = np.float64) -> np.ndarray:
    """``arr`` as an ``(N, *tail)`` array of ``dtype`` with finite values, else a RenderError naming ``name``."""
    out: np.ndarray = np.asarray(arr, dtype=dtype)
    if out.ndim != len(tail) + 1 or out.shape[1:] != tail:
        want = "(N, " + ", ".join(map(str, tail)) + ")"
        raise RenderError(f"`{name}` must be {want}, got {out.shape}")
    check_finite(out, name)
    return out


def ragged_arange(counts: NDArrayInt) -> NDArrayInt:
    """concatenate([arange(c) for c in counts]) without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts

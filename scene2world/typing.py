"""Array aliases used across the package. Shapes, frames and units go in docstrings."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

NDArrayFloat = npt.NDArray[np.float64]
NDArrayFloat32 = npt.NDArray[np.float32]
NDArrayInt = npt.NDArray[np.int64]
NDArrayBool = npt.NDArray[np.bool_]
NDArrayByte = npt.NDArray[np.uint8]

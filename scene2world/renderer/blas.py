"""A render process runs numpy's BLAS on one thread (docs/speed.md, "Per machine").

The geometry's matrix products are small (a camera's map points times a 3 x 3 rotation, the
line vertices' 4-term weights), yet OpenBLAS gives each process a pool of one thread per core
whose threads spin after every product. With one render process per core those pools fight
the renderers for the cores: on the 16-core H100 machine 16 render processes drew 763
camera-frames/s with one BLAS thread each against 645 with the default pools.
"""

from __future__ import annotations

import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Read by a BLAS library when it loads (scipy loads its own OpenBLAS after numpy's)."""


def one_blas_thread() -> None:
    """Limit this process's BLAS libraries (OpenBLAS, MKL, ...) to one thread, for good: those
    loaded already through threadpoolctl, those loaded later through their environment variables."""
    from threadpoolctl import threadpool_limits

    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"
    threadpool_limits(limits=1, user_api="blas")

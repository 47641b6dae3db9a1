"""Versions of the software that made a run, for its manifest (read from package metadata, nothing imported)."""

from __future__ import annotations

import platform
from importlib import metadata

import scene2world

PACKAGES = ("torch", "prefect", "numpy", "opencv-python-headless", "imageio-ffmpeg")


def software_versions() -> dict[str, str | None]:
    """``{"scene2world": …, "python": …, "torch": …, "prefect": …, …}``; None for a package not installed."""
    versions: dict[str, str | None] = {"scene2world": scene2world.__version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions

"""Session-wide test set-up: headless GL, quiet offline Prefect, temporary Prefect home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("PYGLET_HEADLESS", "1")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "90"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_COLORS", "false")
_HOME = Path(tempfile.mkdtemp(prefix="s2w-prefect-home-"))
os.environ["PREFECT_HOME"] = str(_HOME)
os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(_HOME / "storage")
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
REFERENCE_RENDERS = TEST_DATA / "reference_renders"  # NVIDIA renderer output, see its README.md
RDSHQ_CLIP = TEST_DATA / "cdd_rdshq_example" / "clip"  # NVIDIA's public Cosmos-Drive-Dreams clip
EXAMPLE = REPO / "assets" / "example"


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session (heartbeats off to keep flows fast)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), prefect_test_harness(server_startup_timeout=90):
        yield


def process_alive(pid: int) -> bool:
    """``pid`` runs and is not a zombie (from ``/proc``)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"

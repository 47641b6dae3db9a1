"""What a user is told when pyrender's Python modules or the OpenGL system libraries are missing.

Each case runs in a fresh interpreter, since a loaded libEGL or pyrender cannot be unloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(120)

PROBE = """
import sys
{block}
from scene2world.errors import RenderError
from scene2world.renderer.gl import load_pyrender
try:
    load_pyrender("cpu")
except RenderError as e:
    print(e)
    sys.exit(3)
print("loaded")
"""


def _probe(block: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    code = PROBE.format(block=block)
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=90)


def test_loads_over_egl() -> None:
    done = _probe("", PYOPENGL_PLATFORM="egl")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded"


@pytest.mark.parametrize(("module", "project"), [("pyrender", "pyrender2"), ("OpenGL", "PyOpenGL")])
def test_a_missing_python_module_names_the_pip_command(module: str, project: str) -> None:
    # None in sys.modules makes `import <module>` raise ModuleNotFoundError, as if not installed
    done = _probe(f"sys.modules[{module!r}] = None")
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stdout.strip()
    assert f"the Python module `{module}` is not installed" in message
    assert f"-m pip install {project}`" in message
    assert "apt-get" not in message


def test_a_missing_system_library_names_the_apt_command() -> None:
    # OSMesa's library (libosmesa6) is not among the packages scene2world installs: a real missing .so
    if any(os.path.exists(f"{d}/libOSMesa.so.8") for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")):
        pytest.skip("libOSMesa is installed here: no system library is missing")
    done = _probe("", PYOPENGL_PLATFORM="osmesa")
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stdout.strip()
    assert "cannot load the OpenGL system libraries over osmesa" in message
    assert "apt-get install --no-install-recommends libegl1 libgl1 libgl1-mesa-dri libosmesa6" in message
    assert "pip install" not in message

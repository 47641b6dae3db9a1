"""The deployments' pull step: run a flow inside the scene2world checkout, wherever it lies.

A process worker starts each flow run in a temporary folder; the flow's entrypoint and the
relative paths of its config (``configs/*.yaml``, ``.scene2world``, ``runs``) must resolve
against the checkout. Prefect fills ``{{ $SCENE2WORLD_HOME }}`` from the environment at deploy
time, or else on the worker at run time, and drops the argument when it is unset there too;
then the checkout the running ``scene2world`` package comes from is used (docs/prefect.md).
"""

import os
from pathlib import Path

import scene2world
from scene2world.errors import ConfigError

HOME_ENV = "SCENE2WORLD_HOME"
"""Environment variable naming the checkout a worker runs flows in."""

CHECKOUT_MARKER = "prefect.yaml"


def package_checkout() -> Path | None:
    """The checkout the imported package lives in (an editable install), or None (site-packages)."""
    root = Path(scene2world.__file__).resolve().parent.parent
    return root if (root / CHECKOUT_MARKER).is_file() else None


def enter_checkout(directory: str | None = None) -> dict[str, str]:
    """Change the working directory to the checkout; returns ``{"directory": <absolute path>}``.

    Raises ConfigError when neither ``directory`` nor the package's own checkout is a checkout.
    """
    if directory and "{{" not in directory:
        target: Path | None = Path(directory).expanduser()
        where = f"{HOME_ENV}={directory}"
    else:
        target = package_checkout()
        where = f"the checkout of the installed scene2world ({Path(scene2world.__file__).parent})"
    if target is None or not (target / CHECKOUT_MARKER).is_file():
        raise ConfigError(
            f"{where}: not a scene2world checkout (no {CHECKOUT_MARKER}); "
            f"set {HOME_ENV} to the checkout's folder on the worker, or install scene2world with `pip install -e`"
        )
    os.chdir(target)
    return {"directory": os.getcwd()}

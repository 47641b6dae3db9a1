"""`scene2world serve`: the deployments of prefect.yaml served from one process, without a work pool.

prefect.yaml is the one place deployments are declared; serving reads its names, entrypoints,
parameters, tags, schedules and concurrency limits and hands them to ``prefect.serve``, so a
served deployment and a deployed one behave alike (docs/prefect.md, "serve").
"""

from pathlib import Path
from typing import Any

import yaml

from scene2world.errors import ConfigError
from scene2world.flows.checkout import CHECKOUT_MARKER

_ENTRYPOINTS_ALLOWED = "scene2world/flows/"


def read_deployments(path: Path) -> list[dict[str, Any]]:
    """The ``deployments`` list of a prefect.yaml; ConfigError naming the file and the key."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read the deployments file: {e}") from e
    deployments = doc.get("deployments") if isinstance(doc, dict) else None
    if not isinstance(deployments, list) or not deployments:
        raise ConfigError(f"{path}: `deployments` must be a non-empty list")
    for i, dep in enumerate(deployments):
        if not isinstance(dep, dict) or not dep.get("name") or not dep.get("entrypoint"):
            raise ConfigError(f"{path}: `deployments[{i}]` needs a `name` and an `entrypoint`")
        if not str(dep["entrypoint"]).startswith(_ENTRYPOINTS_ALLOWED):
            raise ConfigError(f"{path}: `deployments[{i}].entrypoint` must be a flow under {_ENTRYPOINTS_ALLOWED}")
    return deployments


def build_deployments(path: Path, only: list[str] | None = None, schedules: bool = True) -> list[Any]:
    """RunnerDeployments for the deployments of ``path`` (all, or those named in ``only``)."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron, Interval

    declared = read_deployments(path)
    names = [d["name"] for d in declared]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ConfigError(f"{path}: no deployment named {unknown}; it declares {names}")
    out = []
    for dep in declared:
        if only and dep["name"] not in only:
            continue
        flow: Any = load_flow_from_entrypoint(str(path.parent / dep["entrypoint"]))
        plans = []
        for s in (dep.get("schedules") or []) if schedules else []:
            if "cron" in s:
                plans.append(Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True)))
            elif "interval" in s:
                plans.append(Interval(s["interval"], timezone=s.get("timezone"), active=s.get("active", True)))
        out.append(
            flow.to_deployment(
                name=dep["name"],
                description=dep.get("description"),
                tags=dep.get("tags"),
                parameters=dep.get("parameters"),
                schedules=plans or None,
                concurrency_limit=dep.get("concurrency_limit"),
            )
        )
    return out


def serve_file(path: Path, only: list[str] | None = None, schedules: bool = True) -> None:
    """Serve the deployments of ``path`` from this process until it is stopped (Ctrl-C, SIGTERM)."""
    from prefect import serve

    path = Path(path).absolute()
    if path.name != CHECKOUT_MARKER and path.is_dir():
        path = path / CHECKOUT_MARKER
    serve(*build_deployments(path, only, schedules))

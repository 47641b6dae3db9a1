"""Flow parameters -> one validated PipelineConfig (no Prefect here).

A flow's parameters are all optional: None means "from the config file". A nested settings
model counts only with the keys the caller gave (pydantic's ``exclude_unset``), so a deployment
run with ``--param render='{"frames": "0:90"}'`` changes one key instead of replacing the
whole render section (Prefect itself does not merge nested parameters; docs/prefect.md).
"""

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from scene2world.config import PipelineConfig, merge_config


def explicit_values(**params: Any) -> dict[str, Any]:
    """The parameters a caller actually set, as plain JSON-able values (models: only their set keys)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, BaseModel):
            out[key] = value.model_dump(mode="json", exclude_unset=True)
        elif isinstance(value, Path):
            out[key] = str(value)
        else:
            out[key] = value
    return out


def resolve_config(config: str | Path | None, **params: Any) -> PipelineConfig:
    """Load ``config`` (relative to the current directory, the checkout under a worker) and lay the
    explicit parameters over it. Raises ConfigError naming the file and the key."""
    return merge_config(Path(config) if config else None, explicit_values(**params))

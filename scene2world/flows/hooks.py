"""Prefect plumbing shared by the flows: run names, one-line user errors, the cancellation note."""

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scene2world.errors import Scene2WorldError

_PREFECT_RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs", "prefect.flow_engine", "prefect.task_engine")


USER_ERROR_MARK = "s2w_user_error"
"""Attribute :class:`UserErrorFilter` sets on the records of Prefect's run loggers that report a user error."""

_STATE_EXCEPTION = re.compile(r"encountered an exception:? (\w+): ")
"""The error class in a run's final state line: ``Failed('Task run encountered an exception DatasetError: …')``."""


def _user_error_names() -> set[str]:
    names, todo = set(), [Scene2WorldError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo += cls.__subclasses__()
    return names


class UserErrorFilter(logging.Filter):
    """Drop the traceback Prefect attaches when a run fails with an expected, user-caused error,
    and mark the records that report one (:data:`USER_ERROR_MARK`), for :class:`EchoFilter`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record; strip its traceback when the error is a Scene2WorldError."""
        if record.exc_info and isinstance(record.exc_info[1], Scene2WorldError):
            record.exc_info = None
            record.exc_text = None
            setattr(record, USER_ERROR_MARK, True)
        elif (m := _STATE_EXCEPTION.search(record.getMessage())) and m.group(1) in _user_error_names():
            setattr(record, USER_ERROR_MARK, True)
        return True


class EchoFilter(logging.Filter):
    """On a console whose command prints a user error itself (``scene2world run``): drop Prefect's
    records of that error, so it reads once. The flow run's logs on the server keep them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record :class:`UserErrorFilter` marked."""
        return not getattr(record, USER_ERROR_MARK, False)


def hide_user_error_echoes() -> None:
    """Add :class:`EchoFilter` to this process's console handlers (the root logger's and Prefect's)."""
    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not any(
                isinstance(f, EchoFilter) for f in handler.filters
            ):
                handler.addFilter(EchoFilter())


def install_user_error_filter() -> None:
    """Make Prefect log a user error as one line (a flow under a worker has no CLI to do it)."""
    for name in _PREFECT_RUN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorFilter) for f in logger.filters):
            logger.addFilter(UserErrorFilter())


def run_name() -> str:
    """Flow-run name ``<flow>-<name parameter, else the config file's stem, else "default">-<UTC time>``,
    e.g. ``scene2world-nightly-20261206-171502``: runs of one config told apart at a glance."""
    from prefect.runtime import flow_run

    params: dict[str, Any] = flow_run.parameters or {}
    label = params.get("name") or (Path(str(params["config"])).stem if params.get("config") else "default")
    return f"{flow_run.flow_name}-{label}-{datetime.now(UTC):%Y%m%d-%H%M%S}"


def log_cancellation(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_cancellation`` hook: one log line naming the task runs that were stopped.

    A process worker runs it in a fresh process after the flow's process group is gone, so it
    reads what was running from the API (docs/prefect.md, "Cancellation").
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.logging.loggers import flow_run_logger

    stopped: list[str] = []
    try:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id])))
        # the steps that had not finished: running, or failed by the stop signal before the process ended
        stopped = sorted(r.name for r in runs if r.state is not None and r.state.type.value != "COMPLETED")
    except Exception as e:  # the note must never fail the hook
        stopped = [f"(task runs unreadable: {type(e).__name__})"]
    what = ", ".join(stopped) if stopped else "no step (between steps)"
    flow_run_logger(flow_run, flow).info(
        "cancelled: stopped %s; its processes were ended and nothing half-written was published", what
    )

"""scene2world's own log lines (loggers ``scene2world.*``) in the Prefect UI, with no settings.

Prefect sends only its own loggers to the API unless ``PREFECT_LOGGING_EXTRA_LOGGERS`` names
others before it is imported. :func:`send_to_prefect` instead attaches Prefect's API log handler
to the ``scene2world`` logger, forwarding only records made inside a flow or task run (outside
one, e.g. ``scene2world render``, Prefect's handler would warn on every record; docs/scale-out.md).
"""

from __future__ import annotations

import logging
import threading

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

LOGGER = "scene2world"

_lock = threading.Lock()


class RunLogHandler(APILogHandler):
    """Prefect's API log handler, silent outside a flow or task run."""

    def emit(self, record: logging.LogRecord) -> None:
        """Forward ``record`` when this thread is inside a Prefect run."""
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        super().emit(record)


def send_to_prefect(level: int = logging.INFO) -> None:
    """Attach :class:`RunLogHandler` to the ``scene2world`` logger once per process; a logger left
    at NOTSET gets ``level`` so that info lines reach the UI."""
    logger = logging.getLogger(LOGGER)
    with _lock:
        if any(isinstance(h, RunLogHandler) for h in logger.handlers):
            return
        handler = RunLogHandler()
        handler.setLevel(level)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)

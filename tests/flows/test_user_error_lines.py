"""Prefect's run loggers: a user error loses its traceback everywhere and its echoes on the CLI's console only."""

from __future__ import annotations

import io
import logging

import pytest

from scene2world.errors import DatasetError
from scene2world.flows.hooks import EchoFilter, UserErrorFilter


@pytest.fixture
def consoles():
    """A logger like Prefect's task-run logger, with a console that hides echoes and one that keeps all."""
    logger = logging.getLogger("prefect.task_runs.s2w-test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addFilter(UserErrorFilter())
    hidden, full = io.StringIO(), io.StringIO()
    echo_free = logging.StreamHandler(hidden)
    echo_free.addFilter(EchoFilter())
    logger.addHandler(echo_free)
    logger.addHandler(logging.StreamHandler(full))
    yield logger, hidden, full
    logger.handlers.clear()
    logger.filters.clear()


def _log_failure(logger: logging.Logger, error: Exception) -> None:
    try:
        raise error
    except Exception as e:
        logger.error("Task run failed with exception: %r", e, exc_info=True)
        logger.info("Finished in state Failed('Task run encountered an exception %s: %s')", type(e).__name__, e)


def test_a_user_error_is_one_line_without_echoes(consoles):
    logger, hidden, full = consoles
    _log_failure(logger, DatasetError("/data: no clip found"))
    assert hidden.getvalue() == ""
    lines = full.getvalue().splitlines()
    assert len(lines) == 2 and "Traceback" not in full.getvalue()  # the server's copy: both lines, no traceback


def test_a_bug_keeps_its_traceback_and_its_lines(consoles):
    logger, hidden, full = consoles
    _log_failure(logger, ZeroDivisionError("division by zero"))
    assert "Traceback" in hidden.getvalue() and "Finished in state Failed" in hidden.getvalue()
    assert hidden.getvalue() == full.getvalue()

"""Fixtures of the packaging tests; the upstream outputs they build are made in ``upstream_data.py``."""

from __future__ import annotations

import pytest
from upstream_data import Upstream, make_infer, make_render


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Upstream:
    base = tmp_path_factory.mktemp("upstream")
    render = make_render(base / "render")
    return Upstream(render, make_infer(base / "infer", render))

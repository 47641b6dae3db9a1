"""`scene2world serve` against its own real server: the served pipeline deployment runs a flow.

A server of its own: a deployment deployed to a pool (test_deployments.py) and a served one of the
same name would both claim its runs.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.flows.conftest import Stack, client_env, stop
from tests.flows.test_deployments import flow_state, lean, run_deployment, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_serve_runs_the_flow(prefect_server, tmp_path):
    env = client_env(prefect_server, tmp_path)
    st = Stack(prefect_server, env, tmp_path, tmp_path / "serve.log")
    with open(st.worker_log, "w") as log:
        serve = subprocess.Popen(  # started outside the checkout: it finds prefect.yaml by itself
            [sys.executable, "-m", "scene2world.cli", "serve", "--only", "pipeline"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for("serve to start", lambda: "being served" in st.worker_log.read_text(), timeout=120, every=0.5)
            done, run_id = run_deployment(st, "scene2world/pipeline", lean(tmp_path, name="served"))
            assert done.returncode == 0, done.stdout[-3000:] + st.worker_log.read_text()[-3000:]
            assert flow_state(st, run_id) == "Completed"
            (run_dir,) = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
            assert (run_dir / "manifest.json").is_file()
            assert run_dir.name.startswith("served-")
        finally:
            stop(serve)

"""Prefect's task records are reused only for this run's output folder (data roots share one PREFECT_HOME)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prefect import flow

from scene2world.config import DownloadConfig
from scene2world.tasks.caching import call_step, record_key
from scene2world.tasks.steps import download_target, download_task
from tests.conftest import EXAMPLE


@flow
def _download_into(source: str, data_root: Path) -> tuple[str, str]:
    state = call_step(
        download_task, download_target, cfg=DownloadConfig(source=source), datasets={}, data_root=data_root
    )
    return state.name, state.result()["manifest"]


def test_record_key_names_the_output_folder(tmp_path):
    assert record_key("k" * 64, tmp_path / "a") != record_key("k" * 64, tmp_path / "b")
    assert record_key("k" * 64, tmp_path / "a") == record_key("k" * 64, tmp_path / "x" / ".." / "a")  # absolute


@pytest.mark.timeout(300)
def test_a_data_root_never_serves_another_ones_outputs(prefect_harness, tmp_path):
    dataset = tmp_path / "dataset"
    shutil.copytree(EXAMPLE, dataset)
    a, b = tmp_path / "A", tmp_path / "B"

    first = _download_into(str(dataset), a)
    assert first[0] == "Completed" and Path(first[1]).is_relative_to(a)
    in_b = _download_into(str(dataset), b)
    assert in_b[0] == "Completed" and Path(in_b[1]).is_relative_to(b)  # B builds its own copy

    again = _download_into(str(dataset), a)
    assert again == ("Cached", first[1])  # A's record, pointing into A

    shutil.rmtree(b)
    after = _download_into(str(dataset), a)
    assert after == ("Cached", first[1])
    assert Path(after[1]).is_file()
    back = _download_into(str(dataset), b)  # B's record points at a deleted folder: re-run, not broken
    assert back[0] == "Completed" and Path(back[1]).is_file()

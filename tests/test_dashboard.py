"""The study's Optuna journal in Optuna Dashboard, looked at in a real browser: the dashboard
serves the tiny study's journal and headless Chromium renders its pages."""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.workflow

DOCS_SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "figures" / "optuna_dashboard.png"


def _needed(name: str):
    if shutil.which(name):
        return shutil.which(name)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed (.ci/run installs it)")
    pytest.skip(f"{name} is not installed (pip install -r requirements-extra.txt; apt-get install chromium)")


@pytest.fixture(scope="module")
def dashboard(tiny_study):
    """optuna-dashboard serving the tiny study's journal: (base URL, study summaries)."""
    executable = _needed("optuna-dashboard")
    workdir, _ = tiny_study
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [executable, str(workdir / "results" / "tiny" / "optuna.journal"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until it answers (generously: a loaded machine is slow to start it)
            try:
                with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as response:
                    studies = json.loads(response.read())["study_summaries"]
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("optuna-dashboard exited before serving the journal")
                time.sleep(0.5)
        else:
            pytest.fail("optuna-dashboard did not answer")
        yield base, studies
    finally:
        server.terminate()
        server.wait(timeout=60)


def chromium(*args) -> subprocess.CompletedProcess:
    # --virtual-time-budget lets the page's scripts run to completion before the DOM is taken,
    # in the browser's own clock rather than the machine's
    return subprocess.run(
        [_needed("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_journal_holds_one_study_per_strategy(dashboard, tiny_study):
    _, studies = dashboard
    trials = pd.read_csv(tiny_study[0] / "results" / "tiny" / "trials.csv")
    assert [s["study_name"] for s in studies] == list(trials["strategy"].unique())


def test_the_dashboard_lists_a_strategys_trials_in_a_browser(dashboard, tiny_study, tmp_path):
    base, studies = dashboard
    trials = pd.read_csv(tiny_study[0] / "results" / "tiny" / "trials.csv")
    study = next(s for s in studies if s["study_name"] == "hyperband")
    url = f"{base}/dashboard/studies/{study['study_id']}/trials"
    page = chromium("--dump-dom", url).stdout
    count = int((trials["strategy"] == "hyperband").sum())
    assert count >= 2
    for number in range(count):
        assert f"Trial {number}" in page, page[-2000:]
    assert f"Trial {count}" not in page

    home = chromium("--dump-dom", f"{base}/dashboard").stdout
    assert all(name in home for name in trials["strategy"].unique()), home[-2000:]

    shot = tmp_path / "dashboard.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,900", f"{base}/dashboard/studies/{study['study_id']}")
    assert shot.stat().st_size > 10_000
    if os.environ.get("SNAKETUNE_UPDATE_DOCS") == "1":  # the screenshot kept in the docs
        shutil.copy(shot, DOCS_SCREENSHOT)

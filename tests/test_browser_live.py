"""The dashboard in live mode, in real Chromium: the overview shows the service's snapshot, and
when the service publishes the next one the page follows in place, without a reload."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from argus_core.data import schema, store
from argus_core.live.service import Service, Settings
from tests.test_browser import CHROMIUM, ROOT, _free_port, _settle
from tests.test_live import CLOCK, CUT, FULL, as_json, rows_after

pytestmark = pytest.mark.slow


def test_the_overview_follows_the_service_in_place(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    dataset, models = tmp_path / "live", tmp_path / "models"
    store.write_dataset(dataset, FULL[FULL[schema.TIMESTAMP] <= CUT], kind="simulated", step="5min")
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    service = Service(Settings(dataset=dataset, models=models, threads=1), clock=lambda: CLOCK)
    service.cycle()
    port = _free_port()
    env = {**os.environ, "ARGUS_THREADS": "1", "ARGUS_MODELS": str(models), "ARGUS_DATASETS": str(dataset)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "streamlit did not start"
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.wait_for_selector(".js-plotly-plot", timeout=240_000)
                _settle(page, 120_000)
                assert page.get_by_text("Live: snapshot 1 published").count() == 1
                assert page.locator('[data-testid="stException"]').count() == 0
                service.accept(as_json_bytes(rows_after(CUT, 3)), "application/json")
                service.cycle()  # the service publishes snapshot 2; the page is not reloaded
                page.get_by_text("Live: snapshot 2 published").wait_for(timeout=60_000)
                _settle(page, 60_000)
                assert page.locator('[data-testid="stException"]').count() == 0
            finally:
                browser.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def as_json_bytes(frame) -> bytes:
    import json

    return json.dumps(as_json(frame)).encode()

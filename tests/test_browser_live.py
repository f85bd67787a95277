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
from tests.test_browser import CHROMIUM, ROOT, _free_port, _settle, chromium, stop_process, wait_until_up
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
        wait_until_up(url, process, 90)
        with sync_playwright() as p:
            browser = chromium(p)
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
        stop_process(process)


def as_json_bytes(frame) -> bytes:
    import json

    return json.dumps(as_json(frame)).encode()


def test_make_live_demo_alerts_before_the_breach_and_says_when_the_data_stopped(tmp_path):
    """`live-demo` as a presenter runs it (the service, the replayer and the dashboard), a little
    faster: the dashboard in live mode shows an alert firing on the incident's server, and once the
    replay is over it says the data stopped instead of looking current."""
    import re

    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    api, dash = _free_port(), _free_port()
    dataset = tmp_path / "live-demo"
    env = {**os.environ, "ARGUS_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "argus_core", "live-demo", "--servers", "20", "--speed", "360", "--dataset",
         str(dataset), "--port", str(api), "--dashboard-port", str(dash), "--minutes", "9"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{dash}", process, 120, "the live demo")
        with sync_playwright() as p:
            browser = chromium(p)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{dash}")
                import json

                deadline, alerts = time.monotonic() + 360, []
                while not alerts and time.monotonic() < deadline:  # the service's own word first
                    with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/v1/alerts", timeout=10) as answer:
                        alerts = json.loads(answer.read())["alerts"]
                    time.sleep(1)
                assert alerts and all(a["server_name"] for a in alerts), "no alert fired in the live demo"
                # then the page: an alert firing now, or one that fired and resolved after the breach
                shown = page_says(page, re.compile(r"\b[1-9]\d* firing|\b\d+ firing, [1-9]\d* resolved"), 240)
                assert shown, "the page never showed the alert"
                assert page_says(page, re.compile("The data stopped"), 360), "the page never said the data stopped"
                assert page.locator('[data-testid="stException"]').count() == 0
            finally:
                browser.close()
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def page_says(page, pattern, seconds: float, reload_every: float = 45.0) -> str | None:
    """The page's text once ``pattern`` is in it, None after ``seconds``. Polled: the page reruns in
    place as snapshots land; it is also opened afresh every ``reload_every`` seconds, as a presenter
    would, so a busy machine's slow redraw cannot hide what the service says (following in place is
    `test_the_overview_follows_the_service_in_place`'s to check)."""
    deadline = time.monotonic() + seconds
    reload_at = time.monotonic() + reload_every
    while time.monotonic() < deadline:
        if time.monotonic() > reload_at:
            page.reload()
            reload_at = time.monotonic() + reload_every
        try:
            text = page.inner_text("body", timeout=10_000)
        except Exception:  # noqa: BLE001 - the page is being redrawn: look again
            text = ""
        if pattern.search(text):
            return text
        page.wait_for_timeout(1000)
    return None

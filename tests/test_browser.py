"""The whole app in a real browser: `streamlit run app.py` headless on a free port, driven by
Debian's Chromium through Playwright. Every page renders its charts, the app settles, no
exception is shown; a screenshot of each page lands in a temporary folder (or in
ARGUS_SCREENSHOTS when set, which is how the README's screenshot is made)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
PLOT, TABLE, FORM = ".js-plotly-plot", '[data-testid="stDataFrame"]', '[data-testid="stExpander"]'
# a fresh server's first request is a page's own URL, as a bookmark after a restart would be
PAGES = [("critical_servers", "Critical servers", TABLE), ("", "Fleet overview", PLOT),
         ("server_detail", "Server detail", PLOT), ("training_console", "Training console", FORM),
         ("model_quality", "Model quality", PLOT), ("incident_demo", "Incident demo", PLOT)]

pytestmark = pytest.mark.slow
SERVED: dict = {}  # what the served app reads (its models directory), for tests that change it under the page


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y --no-install-recommends chromium` "
                    "(make test does this when it can)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    port = _free_port()
    # the shipped model with a backtest on the demo fleet, so the model quality page has one to show
    from argus_core.model import backtest

    models = tmp_path_factory.mktemp("browser") / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".runs", ".checkpoints"))
    backtest.run(ROOT / "demo_data" / "fleet", models, origins=1, classical="none")
    SERVED["models"] = models
    env = {**os.environ, "ARGUS_THREADS": "1", "ARGUS_MODELS": str(models)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ui.launch", "--server.headless", "true", "--server.port", str(port),  # as make run
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("streamlit did not start:\n" + process.stdout.read().decode(errors="replace")[-3000:])
        time.sleep(0.5)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def stop_process(process: subprocess.Popen) -> None:
    """A served app stopped: SIGTERM, then SIGKILL after 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def chromium(playwright):
    """Debian's Chromium, headless, as every browser test drives it."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=["--headless", "--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])


def wait_until_up(url: str, process: subprocess.Popen, seconds: float, what: str = "streamlit") -> None:
    """Until ``url``'s Streamlit health check answers; fails when ``process`` dies or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                return
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, f"{what} did not start"
            time.sleep(0.5)


@contextmanager
def opened(url: str, selector: str, width: int = 1440, height: int = 1000):
    """A Chromium page on ``url``, once ``selector`` is drawn and the app has settled; closed after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = chromium(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            page.wait_for_selector(selector, timeout=240_000)
            _settle(page, 120_000)
            yield page
        finally:
            browser.close()


def _settle(page, timeout_ms: int) -> None:
    """Wait until the app has stopped running (the status widget's 'running' state is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0 or \
            page.locator('[data-testid="stSkeleton"]').count() > 0
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 1.5:
            return
        page.wait_for_timeout(250)
    raise AssertionError("the app was still running after the timeout")


def test_every_page_renders_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("ARGUS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for index, (path, title, drawn) in enumerate(PAGES):
                page.goto(f"{server}/{path}")
                # the first page pays for importing torch and loading the model
                page.wait_for_selector(drawn, timeout=240_000 if index == 0 else 90_000)
                _settle(page, 120_000)
                assert page.get_by_role("heading", name=title).count() >= 1, f"{title}: no title"
                assert page.locator('[data-testid="stException"]').count() == 0, f"{title}: an exception is shown"
                assert page.locator('[data-testid="stAlertContentError"]').count() == 0, f"{title}: an error is shown"
                assert page.locator(drawn).count() >= 1
                # served through app.py's router: its navigation and shared sidebar are there
                routed = page.get_by_role("link", name="Training console", exact=True).count() == 1
                assert routed, f"{title}: not served through the router"
                # the shared sidebar: the time cursor, or on the demo (its own fleet time) a note saying so
                shared = "plays its own scripted fleet" if path == "incident_demo" else "Follow the latest data"
                assert page.get_by_text(shared).count() == 1, title
                page.screenshot(path=str(shots / f"{index}-{path or 'fleet_overview'}.png"), full_page=True)

            # the demo plays in place: fleet time moves without reloading the page
            clock = page.locator('[data-testid="stMetricValue"]').first
            before = clock.inner_text()
            page.get_by_role("button", name="Play").click()
            page.wait_for_function(
                "before => document.querySelector('[data-testid=\"stMetricValue\"]').innerText !== before",
                arg=before, timeout=30_000)
            page.get_by_role("button", name="Pause").click()
            _settle(page, 60_000)
            assert page.locator('[data-testid="stException"]').count() == 0
            assert clock.inner_text() != before
            assert page.get_by_text("plays its own scripted fleet").is_visible()  # the sidebar survives reruns
        finally:
            browser.close()


def test_the_time_cursor_follows_details_a_row_click_and_the_navigation(server):
    """An SRE looking at 23:00 opens a server from Fleet overview and from Critical servers: the
    detail opens at 23:00, not at the latest sample, and the URL keeps ?as_of= for a shared link."""
    moment = "2026-01-06 23:00"
    with opened(f"{server}/?as_of=2026-01-06T23:00", PLOT) as page:
        assert page.get_by_text(f"as of {moment} UTC").count() >= 1
        # at 1024 px the level badges read whole ("warning", not "war...")
        page.set_viewport_size({"width": 1024, "height": 900})
        page.wait_for_timeout(500)
        clipped = page.eval_on_selector_all(
            'span.stMarkdownBadge', "badges => badges.filter(b => { "
            "const col = b.closest('[data-testid=stColumn]');"
            " return b.scrollWidth > b.clientWidth + 1 || (col && b.getBoundingClientRect().right > "
            "col.getBoundingClientRect().right + 1); }).map(b => b.innerText)")
        assert page.locator('span.stMarkdownBadge').count() >= 1 and clipped == [], clipped
        page.set_viewport_size({"width": 1440, "height": 1000})
        page.get_by_role("button", name="Details").first.click()
        page.wait_for_selector(f"text=as of {moment} UTC", timeout=120_000)
        _settle(page, 120_000)
        assert "server_detail" in page.url and "as_of=2026-01-06T23" in page.url, page.url
        page.get_by_role("link", name="Critical servers", exact=True).click()
        page.wait_for_selector(TABLE, timeout=120_000)
        _settle(page, 120_000)
        assert page.get_by_text(f"as of {moment} UTC").count() >= 1
        assert "as_of=2026-01-06T23" in page.url, page.url
        grid = page.locator(TABLE).first.bounding_box()
        page.mouse.click(grid["x"] + 12, grid["y"] + 35 + 17)  # the first row's selection cell
        page.wait_for_selector(f"text=as of {moment} UTC", timeout=120_000)
        page.wait_for_url("**/server_detail**", timeout=120_000)
        _settle(page, 120_000)
        assert page.get_by_text(f"as of {moment} UTC").count() >= 1
        assert page.locator('[data-testid="stException"]').count() == 0


def test_the_console_follows_runs_without_a_reload(server):
    """A run another loop records finishes while the console is open: its model can be promoted
    without reloading the page (the history and champion sections refresh themselves)."""
    from argus_core.model import registry
    from argus_core.runs.store import REST, RunStore, default_path

    models = SERVED["models"]
    retired = next(m for m, e in registry.read(models)["models"].items() if e.get("status") == "retired")
    with opened(f"{server}/training_console", FORM) as page:
        assert page.get_by_text("Model of a finished run").count() == 0
        runs = RunStore(default_path(models))
        run_id = runs.create("elsewhere", {}, "demo_data/fleet", status="running", origin=REST)
        runs.finish(run_id, "completed", model_id=retired)
        page.get_by_text("Model of a finished run").wait_for(timeout=30_000)  # no reload
        assert page.locator('[data-testid="stException"]').count() == 0

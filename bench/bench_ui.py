"""Dashboard speed: time from request to the first rendered chart of each page, in Debian's
Chromium, cold (first visit after the server starts) and warm (median of later visits), for
the 90-server demo fleet and a simulated 1,000-server fleet.

    .venv/bin/python bench/bench_ui.py [--warm-visits 3] [--servers 90,1000]

Three figures per page: cold, warm (a fresh tab loading the page's URL: the whole Streamlit
frontend starts again), and a click on the page's link in the sidebar of an app already open
(how an SRE moves between pages; median of ``--warm-visits`` rounds).

Beside each fleet, the baseline measured in the same run: the library alone
(``dashboard.fleet_view`` + ``ranking``), cold and warm, in this process. The server runs with
ARGUS_THREADS=1, the app's default on this 2-core machine (cores - 1).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

from argus_core.data import store  # noqa: E402
from argus_core.data.simulate import SimConfig, simulate_fleet  # noqa: E402
from argus_core.model import forecast  # noqa: E402
from argus_core.views import dashboard  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLOT, TABLE = ".js-plotly-plot", '[data-testid="stDataFrame"]'
PAGES = [("", "Fleet overview", PLOT), ("critical_servers", "Critical servers", TABLE),
         ("server_detail", "Server detail", PLOT), ("incident_demo", "Incident demo", PLOT)]
# The floor: a Streamlit script that draws one three-point plotly chart, timed the same way
FLOOR_APP = """import plotly.graph_objects as go
import streamlit as st
st.title("floor")
st.plotly_chart(go.Figure(go.Scatter(x=[1, 2, 3], y=[1, 3, 2])))
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LAUNCH = {"launch": "ui"}  # ui: `make run`'s launcher (python -m ui.launch); plain: streamlit run app.py


def start_server(extra_env: dict, script: str = "app.py") -> tuple[subprocess.Popen, str]:
    port = _port()
    env = {**os.environ, "ARGUS_THREADS": "1", **extra_env}
    how = ["-m", "ui.launch"] if script == "app.py" and LAUNCH["launch"] == "ui" else \
        ["-m", "streamlit", "run", script]
    process = subprocess.Popen([sys.executable, *how, "--server.port", str(port),
                                "--server.address", "127.0.0.1"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    LAUNCH["spawned"] = time.perf_counter()
    for _ in range(240):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                LAUNCH["ready"] = time.perf_counter() - LAUNCH["spawned"]
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("streamlit did not start")


def launch(playwright):
    """Debian's Chromium, headless, and one browser profile (context) in it."""
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=["--headless", "--no-sandbox", "--disable-gpu",
                                               "--disable-background-networking"])
    return browser, browser.new_context(viewport={"width": 1400, "height": 1000})


def time_page(context, url: str, selector: str) -> float:
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector(selector, timeout=600_000)
        return time.perf_counter() - started
    finally:
        page.close()


# a chart (or table) of the page just asked for: the new page's heading is there and the element is
# not a stale one left from the page before (Streamlit marks those data-stale="true" until replaced)
FRESH = """([title, selector]) => {
  const fresh = e => { const c = e.closest('[data-stale]'); return !c || c.dataset.stale !== 'true'; };
  const heading = [...document.querySelectorAll('h1, h2, h3')].some(h => h.innerText.trim() === title && fresh(h));
  return heading && [...document.querySelectorAll(selector)].some(fresh);
}"""


def settle(page, timeout_s: float = 300) -> None:
    """Until the app has stopped running for a second (no status widget, no skeleton)."""
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]').count() > 0
        quiet_since = None if running else (quiet_since or time.monotonic())
        if quiet_since and time.monotonic() - quiet_since > 1.0:
            return
        page.wait_for_timeout(100)
    raise SystemExit("the app kept running")


def time_navigation(page, title: str, selector: str) -> float:
    """From a click on the page's link in the sidebar (the app already open, as an SRE keeps it)
    to its first chart: no page load, the browser keeps its session and websocket."""
    link = page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first
    started = time.perf_counter()
    link.click()
    page.wait_for_function(FRESH, arg=[title, selector], timeout=600_000, polling=50)
    elapsed = time.perf_counter() - started
    settle(page)
    return elapsed


CURSOR_AT = "2026-01-07T20:00"  # inside the demo fleet's last day


def time_cursor(page, moves: int) -> list[float]:
    """On Fleet overview opened at a moment (``?as_of=``): move the "as of" cursor one step back
    with the keyboard, ``moves`` times; each time from the key press until the overview's
    caption names the new moment and the app has stopped running (every chart redrawn)."""
    import re

    thumb = page.locator('[data-testid="stSlider"] [aria-valuetext]').first  # the thumb's input
    spent = []
    for _ in range(moves):
        before = page.get_by_text(re.compile(r"· as of \d{4}-\d\d-\d\d \d\d:\d\d UTC")).first.inner_text()
        thumb.focus()
        started = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "before => [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
            ".some(c => c.innerText.includes('· as of ') && c.innerText !== before && "
            "!c.closest('[data-stale=\"true\"]'))", arg=before, timeout=120_000, polling=50)
        settle(page, 120)
        spent.append(time.perf_counter() - started - 1.0)  # settle waits a quiet second
    return spent


def library_baseline(dataset: Path) -> tuple[float, float]:
    import torch

    torch.set_num_threads(1)
    forecast.clear_caches()
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        view = dashboard.fleet_view(dataset, ROOT / "models")
        dashboard.ranking(view)
        timings.append(time.perf_counter() - started)
    return timings[0], timings[1]


def measure(label: str, dataset: Path, extra_env: dict, warm_visits: int) -> None:
    from playwright.sync_api import sync_playwright

    cold_lib, warm_lib = library_baseline(dataset)
    process, url = start_server(extra_env)
    try:
        with sync_playwright() as p:
            # one browser profile, as a user's: cold pays the server's first forecast and the
            # browser's first download of the app; warm visits find both cached
            browser, context = launch(p)
            cold = {title: time_page(context, f"{url}/{path}", sel) for path, title, sel in PAGES}
            warm = {title: statistics.median(time_page(context, f"{url}/{path}", sel) for _ in range(warm_visits))
                    for path, title, sel in PAGES}
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector(PLOT, timeout=600_000)
            settle(page)
            clicks: dict[str, list[float]] = {title: [] for _, title, _ in PAGES}
            for _ in range(warm_visits):
                for _, title, sel in PAGES[1:] + PAGES[:1]:  # from the overview round the sidebar and back
                    clicks[title].append(time_navigation(page, title, sel))
            navigation = {title: statistics.median(times) for title, times in clicks.items()}
            page.goto(f"{url}/?as_of={CURSOR_AT}")  # the cursor on, as a shared link opens it
            page.wait_for_selector(PLOT, timeout=600_000)
            settle(page)
            cursor = time_cursor(page, warm_visits)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    print(f"\n## {label}")
    print(f"baseline, library alone in this process (fleet_view + ranking): cold {cold_lib:.2f} s, "
          f"warm {warm_lib:.3f} s")
    print(f"{'page':<18} {'cold (s)':>9} {'warm (s)':>9} {'sidebar click (s)':>18}")
    for _, title, _ in PAGES:
        print(f"{title:<18} {cold[title]:>9.2f} {warm[title]:>9.2f} {navigation[title]:>18.2f}")
    print(f"the server answered {LAUNCH['ready']:.1f} s after it was started; the first page then took "
          f"{cold['Fleet overview']:.2f} s: {LAUNCH['ready'] + cold['Fleet overview']:.1f} s from launch to the first "
          "page drawn")
    print(f"first page after start (Fleet overview, cold): {cold['Fleet overview']:.2f} s (goal <= 5 s); a move of "
          f"the 'as of' cursor on Fleet overview: median {statistics.median(cursor):.2f} s, max {max(cursor):.2f} s "
          f"over {len(cursor)} moves (goal <= 1.5 s)")


def floor(warm_visits: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "floor.py"
        script.write_text(FLOOR_APP)
        process, url = start_server({}, str(script))
        try:
            with sync_playwright() as p:
                browser, context = launch(p)
                cold = time_page(context, url, PLOT)
                warm = statistics.median(time_page(context, url, PLOT) for _ in range(warm_visits))
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"\n## Floor: a Streamlit page with one 3-point plotly chart\ncold {cold:.2f} s, warm {warm:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm-visits", type=int, default=3)
    parser.add_argument("--servers", default="90,1000")
    parser.add_argument("--launch", choices=("ui", "plain"), default="ui",
                        help="ui: as `make run` starts it (python -m ui.launch); plain: streamlit run app.py "
                             "(a checkout from before the launcher)")
    parser.add_argument("--no-floor", action="store_true", help="skip the one-chart floor page")
    args = parser.parse_args()
    LAUNCH["launch"] = args.launch
    sizes = [int(s) for s in args.servers.split(",")]
    if not args.no_floor:
        floor(args.warm_visits)
    if 90 in sizes:
        measure("90 servers (demo_data/fleet, goal warm <= 1.5 s)", ROOT / "demo_data" / "fleet", {},
                args.warm_visits)
    for size in (s for s in sizes if s != 90):
        with tempfile.TemporaryDirectory() as tmp:
            dataset = Path(tmp) / f"fleet-{size}"
            sim = simulate_fleet(SimConfig(servers=size, hours=48, seed=5))
            store.write_dataset(dataset, sim.frame, kind="simulated", incidents=sim.incidents)
            measure(f"{size:,} servers (simulated, 48 h, seed 5; goal warm <= 3 s)", dataset,
                    {"ARGUS_DATASETS": str(dataset)}, args.warm_visits)


if __name__ == "__main__":
    main()

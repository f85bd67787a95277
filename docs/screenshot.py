"""Write docs/fleet-overview.png, the README's screenshot: the fleet overview of the shipped demo
fleet two hours before its database incident, taken in Debian's Chromium. With --page, another
page (docs/model-quality.png: the NAB model's backtest, ARGUS_MODELS=models-nab).

    .venv/bin/python docs/screenshot.py [--as-of 2026-01-06T22:00]
    ARGUS_MODELS=models-nab .venv/bin/python docs/screenshot.py --page model_quality --output docs/model-quality.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", default="2026-01-06T22:00")
    parser.add_argument("--port", type=int, default=8611)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "fleet-overview.png")
    parser.add_argument("--page", default="", help="page path, e.g. model_quality (default: the fleet overview)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(args.port)],
                              cwd=ROOT, env={**os.environ, "ARGUS_THREADS": "1"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            page.goto(f"{url}/{args.page}?as_of={args.as_of}")
            # a chart, or a table on a page without one (Critical servers)
            page.wait_for_selector(".js-plotly-plot, [data-testid='stDataFrame']", timeout=300_000)
            page.wait_for_timeout(3000)  # let the second chart and the fonts settle
            page.screenshot(path=str(args.output))
            browser.close()
    finally:
        server.terminate()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

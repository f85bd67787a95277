"""How far the training console lags behind the training process: the time from a metric
written to the run store to the console showing it, in Debian's Chromium.

    .venv/bin/python bench/bench_console.py [--seconds 60]

Starts a small training (hidden 8, 40 epochs of 5 batches on the demo incident data) through
``jobs.start``, the console's own code path, into a temporary models directory, serves the app
on it, and watches the console's "last metric written" line. Each time it changes, the lag is
the browser's clock minus the write time recorded in the store. The baseline beside it is the
polling interval itself (the fragment reruns every 2 s, so the expected lag is about 1 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_ui import launch, start_server  # noqa: E402

from argus_core.model import registry
from argus_core.model.config import TrainConfig  # noqa: E402
from argus_core.runs import jobs  # noqa: E402
from argus_core.runs.store import RunStore, default_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        shipped = registry.champion_model_id(ROOT / "models")
        models.mkdir()
        shutil.copytree(ROOT / "models" / shipped, models / shipped)
        shipped_loss = registry.read(ROOT / "models")["models"][shipped]["val_loss"]
        registry.register(models, shipped, {"val_loss": shipped_loss})
        config = TrainConfig(epochs=40, batches_per_epoch=5, val_batches=1, hidden_size=8, batch_size=16,
                             encoder_length=96, horizon=24, threads=1, fresh=True)
        run_id = jobs.start(ROOT / "demo_data" / "incident", models, config, name="lag probe")
        runs = RunStore(default_path(models))
        server, url = start_server({"ARGUS_MODELS": str(models)})
        lags = []
        try:
            with sync_playwright() as p:
                browser, context = launch(p)
                page = context.new_page()
                page.goto(f"{url}/training_console")
                page.wait_for_selector("text=last metric written", timeout=600_000)
                seen = page.locator("text=last metric written").inner_text()
                ends = time.monotonic() + args.seconds
                while time.monotonic() < ends and runs.get(run_id).status in ("queued", "running"):
                    text = page.locator("text=last metric written").inner_text()
                    if text != seen:
                        shown = time.time()
                        seen = text
                        written = runs.metrics(run_id)["time"]
                        hhmmss = text.split("written ")[1].split(" ")[0]
                        matching = [t for t in written if time.strftime("%H:%M:%S", time.gmtime(t)) == hhmmss]
                        if matching:
                            lags.append(shown - max(matching))
                    time.sleep(0.05)
                browser.close()
        finally:
            server.terminate()
            if runs.get(run_id).status in ("queued", "running"):
                jobs.cancel(models, run_id)
    if not lags:
        raise SystemExit("no update was seen: is the training running?")
    lags.sort()
    print(f"\n## Console lag behind the training ({len(lags)} updates over {args.seconds:.0f} s)")
    print(f"baseline: the fragment polls every {POLL_S:.0f} s, so about {POLL_S / 2:.1f} s on average by design")
    print(f"median {statistics.median(lags):.2f} s, p90 {lags[int(0.9 * (len(lags) - 1))]:.2f} s, "
          f"max {lags[-1]:.2f} s (metrics are written at most once a second)")


if __name__ == "__main__":
    os.environ.setdefault("ARGUS_THREADS", "1")
    main()

"""`make run`: the dashboard (``streamlit run app.py``), with the heavy part of the first page done
while the server starts, before it answers: torch, pytorch-forecasting and Lightning imported,
the champion loaded and the default fleet forecast once (the model and forecast caches are the
process's own, so the first page finds them). Without this the first visitor waited for all of it.

    python -m ui.launch [streamlit options, e.g. --server.port 8501]
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("argus.ui")


def warm() -> None:
    """Load what the first page needs; any failure is left for that page to report."""
    try:
        from argus_core.model import threads
        from argus_core.views import dashboard
        from ui.state import available_datasets, models_root

        threads.use_threads(threads.from_environment())
        datasets = available_datasets()
        if datasets:
            dashboard.view_of(dashboard.view_source(datasets[0], models_root()))
    except Exception:  # noqa: BLE001 - a warm-up never stops the dashboard; the page says what is wrong
        log.debug("warm-up skipped", exc_info=True)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    # before the server answers: its first visitor then finds the libraries, the model and the
    # default forecast ready (a few seconds more before the address is served, none after it)
    print("Argus: loading the model and forecasting the default fleet before serving...", flush=True)
    warm()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(cli.main())


if __name__ == "__main__":
    main()

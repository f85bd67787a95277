"""What a pull from Prometheus keeps, without a Prometheus: one metric that stops answering for a
host (CLOSE_WAIT with no socket in the state) is a gap for that metric alone; the host's other
metrics keep being stored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.live import prometheus

STEP = pd.Timedelta("5min")


def test_a_metric_that_stops_answering_leaves_the_hosts_other_metrics_stored():
    stamps = pd.date_range("2026-03-01T10:00Z", periods=12, freq=STEP)
    index = pd.MultiIndex.from_product([["host-a", "host-b"], stamps], names=[schema.SERVER, schema.TIMESTAMP])
    wide = pd.DataFrame({"mem_used_pct": np.linspace(40, 50, 24), "back_close_wait": 3.0}, index=index)
    wide.loc[("host-a", stamps[4]):("host-a", stamps[-1]), "back_close_wait"] = np.nan  # no socket left in the state
    out = prometheus.on_grid(wide, STEP)
    host_a = out[out[schema.SERVER] == "host-a"].set_index(schema.TIMESTAMP)
    # every row but the last LAG_STEPS, where a late metric may still arrive, is kept
    assert list(host_a.index) == list(stamps[:-prometheus.LAG_STEPS])
    assert host_a["mem_used_pct"].notna().all()
    # the stopped metric is not carried past its last real value: a gap from there on
    assert host_a["back_close_wait"].iloc[:4].eq(3.0).all() and host_a["back_close_wait"].iloc[4:].isna().all()
    assert len(out[out[schema.SERVER] == "host-b"]) == len(stamps)  # the host with every metric: every row

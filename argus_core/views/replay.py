"""The incident demo, replayed in fleet time: the scripted scenario's phases, one forecast per
tick, and the two moments a presenter points at (the model first predicts the breach; the
breach happens) with the lead time between them.

Deterministic: the data is the committed scenario (seed 42), ticks sit on a fixed grid from the
start of the baseline phase, and the model runs in inference mode, so the same speed gives the
same run every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from argus_core import anomaly, fleet
from argus_core.data import schema, store
from argus_core.errors import DatasetError

SPEEDS = {"5 min per tick": 5, "15 min per tick": 15, "30 min per tick": 30}  # fleet minutes per tick


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str
    metric: str
    threshold: float  # the critical threshold whose crossing is the breach
    breach_time: pd.Timestamp
    phases: tuple[dict, ...]  # name, start, end, narrative

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.phases[0]["start"])

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.phases[-1]["end"])

    def phase_at(self, now: pd.Timestamp) -> dict:
        for phase in self.phases:
            if pd.Timestamp(phase["start"]) <= now < pd.Timestamp(phase["end"]):
                return phase
        return self.phases[-1] if now >= self.end else self.phases[0]


def load_scenario(dataset) -> Scenario:
    """The scenario written by ``demo-data``; DatasetError for a dataset without one."""
    manifest = store.read_manifest(dataset)
    scenario = manifest.get("scenario")
    truth = store.read_incidents(dataset)
    if not scenario or truth.empty:
        raise DatasetError(f"{dataset} has no scripted scenario; write one with "
                           "`python -m argus_core demo-data --output demo_data/incident`")
    incident = truth[truth[schema.SERVER] == scenario["incident_server"]].iloc[0]
    return Scenario(scenario["name"], scenario["incident_server"], str(incident["metric"]),
                    float(incident["threshold"]), pd.Timestamp(incident["breach_time"]),
                    tuple(scenario["phases"]))


def tick_after(scenario: Scenario, now: pd.Timestamp, minutes: int) -> pd.Timestamp:
    """The next tick on the grid of ``minutes`` from the scenario's start, never past its end."""
    step = pd.Timedelta(minutes=minutes)
    ticks_done = (now - scenario.start) // step
    return min(scenario.start + step * (ticks_done + 1), scenario.end)


@dataclass
class Tick:
    now: pd.Timestamp
    phase: dict
    assessment: fleet.Assessment  # the fleet as of ``now``, as every other page would assess it
    actual: pd.DataFrame  # the incident server's metric: timestamp, value (last 24 h)
    band: pd.DataFrame  # its forecast: timestamp, q10, q50, q90
    predicted: bool  # the p90 path reaches the critical threshold within the horizon
    breached: bool  # the actual value has reached it
    abnormal: bool = False  # the incident server is abnormal now (the detector beside the model, when there is one)

    @property
    def ranking(self) -> pd.DataFrame:
        """The fleet's ranking, riskiest first (``fleet.rank``)."""
        return self.assessment.ranking


def tick(frame: pd.DataFrame, scenario: Scenario, forecaster, now: pd.Timestamp,
         previous_levels: dict[str, str] | None = None, detector=None, rules=None) -> Tick:
    """Assess the demo fleet from the data up to ``now`` (``fleet.assess``, as the other pages
    do); with ``detector`` (an ``anomaly.AnomalyModel``), also say who is abnormal now; ``rules``
    (an ``alerting.RuleSet``) brings its per-profile and per-server thresholds."""
    step = forecaster.step
    stamps = frame[schema.TIMESTAMP]
    window = frame[(stamps > now - step * forecaster.history_steps) & (stamps <= now)]
    judge = anomaly.window_judge(detector, frame=frame) if detector is not None else None
    assessment = fleet.assess(window, forecaster, rules=rules, judge=judge, previous_levels=previous_levels)
    mine = window[window[schema.SERVER] == scenario.server]
    actual = pd.DataFrame({schema.TIMESTAMP: mine[schema.TIMESTAMP].to_numpy(),
                           "value": schema.metric_values(mine, scenario.metric)})
    q = assessment.forecast.quantiles
    band = q[(q[schema.SERVER] == scenario.server) & (q["metric"] == scenario.metric)]
    band = band[[schema.TIMESTAMP, *schema.QUANTILE_COLUMNS]].reset_index(drop=True)
    found = assessment.abnormal
    abnormal = found is not None and bool(found.loc[found[schema.SERVER] == scenario.server, "abnormal"].any())
    return Tick(now, scenario.phase_at(now), assessment, actual, band,
                predicted=bool((band["q90"] >= scenario.threshold).any()),
                breached=bool((actual["value"] >= scenario.threshold).any()) and now >= scenario.breach_time,
                abnormal=abnormal)

"""The live demo (``make live-demo``): a simulated fleet with one scripted incident, its first day
written as the live dataset, and a replayer that pushes the rest to the service over HTTP in
accelerated fleet time, as a real agent would, while the dashboard follows in live mode.

    fleet time   one simulated step (5 min) is pushed every ``5 min / speed`` of wall time
    incident     precursor 2 h into the replay, breach 3 h later, fixed 1 h after that
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from argus_core.data import schema, store
from argus_core.data.profiles import PROFILES, fleet_composition, fleet_names
from argus_core.data.simulate import INCIDENT_KINDS, ScriptedIncident, SimConfig, Simulation, simulate_fleet
from argus_core.errors import SettingsError
from argus_core.fleet import live_state

HISTORY = pd.Timedelta("26h")  # written before the replay starts: a full encoder window and some
REPLAY = pd.Timedelta("12h")  # what the replayer pushes


@dataclass(frozen=True)
class DemoPlan:
    servers: int = 30
    incident: str = "memory_leak"
    seed: int = 7
    speed: float = 120.0  # fleet seconds per wall-clock second
    start: str = "2026-01-06T00:00:00+00:00"  # a Tuesday: a trading day's rhythm in the replay


def incident_server(plan: DemoPlan) -> str:
    """The first server of a profile that typically has this incident."""
    names = fleet_names(fleet_composition(plan.servers))
    for name, profile in names:
        if plan.incident in PROFILES[profile].incident_kinds:
            return name
    return names[0][0]


def simulate(plan: DemoPlan) -> tuple[Simulation, pd.Timestamp, ScriptedIncident]:
    """The whole demo fleet (history and replay) and the moment the replay starts."""
    if plan.incident not in INCIDENT_KINDS:
        raise SettingsError(f"unknown incident {plan.incident!r}; use one of {', '.join(INCIDENT_KINDS)}")
    if not 1 <= plan.servers <= 2000:
        raise SettingsError(f"servers must be between 1 and 2000, not {plan.servers}")
    if not 1 <= plan.speed <= 10_000:
        raise SettingsError(f"speed must be between 1 and 10000 fleet seconds per second, not {plan.speed}")
    start = pd.Timestamp(plan.start)
    replay_from = start + HISTORY
    incident = ScriptedIncident(server_name=incident_server(plan), kind=plan.incident,
                                precursor_start=(replay_from + pd.Timedelta("2h")).isoformat(),
                                breach_time=(replay_from + pd.Timedelta("5h")).isoformat(),
                                end_time=(replay_from + pd.Timedelta("6h")).isoformat())
    config = SimConfig(servers=plan.servers, hours=(HISTORY + REPLAY) / pd.Timedelta("1h"), seed=plan.seed,
                       start=plan.start)
    return simulate_fleet(config, scripted=(incident,)), replay_from, incident


def write_history(dataset: Path, sim: Simulation, replay_from: pd.Timestamp) -> None:
    frame = sim.frame[sim.frame[schema.TIMESTAMP] < replay_from]
    store.write_dataset(dataset, frame, kind="simulated", step=schema.DEFAULT_STEP,
                        extra={"generator": sim.settings, "live_demo": True})
    live = live_state.state_dir(dataset)
    if live.exists():  # a previous demo's snapshot and inbox belong to other data
        import shutil

        shutil.rmtree(live)


class Replayer:
    """Pushes the replay part of a simulation to ``url`` one step at a time, in a thread."""

    def __init__(self, sim: Simulation, replay_from: pd.Timestamp, url: str, speed: float,
                 token: str | None = None, log=print) -> None:
        frame = sim.frame[sim.frame[schema.TIMESTAMP] >= replay_from]
        self.steps = [part.drop(columns=[schema.PROFILE]) for _, part in frame.groupby(schema.TIMESTAMP, sort=True)]
        self.url, self.speed, self.token, self.log = url, speed, token, log
        self.pushed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="argus-replayer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        pause = pd.Timedelta(schema.DEFAULT_STEP).total_seconds() / self.speed
        for rows in self.steps:
            if self._stop.wait(pause):
                return
            body = rows.astype({schema.SERVER: str, schema.STATUS: str}).to_json(orient="records", date_format="iso")
            request = urllib.request.Request(self.url, data=body.encode(), method="POST",
                                             headers={"content-type": "application/json",
                                                      **({"authorization": f"Bearer {self.token}"}
                                                         if self.token else {})})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    self.pushed += json.loads(answer.read())["accepted"]
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.log(f"replayer: push failed ({exc}); retrying at the next step")
                continue
            if self.pushed and self.pushed % (len(rows) * 12) == 0:
                self.log(f"replayer: fleet time {rows[schema.TIMESTAMP].iloc[0]:%m-%d %H:%M} UTC, "
                         f"{self.pushed:,} rows pushed")
        self.log("replayer: the replay is over (the service keeps serving)")


def wait_until_up(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise SettingsError(f"the service did not answer at {url} within {timeout:.0f} s")

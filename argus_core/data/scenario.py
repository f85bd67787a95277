"""The scripted incident demo: one fixed, seeded scenario a presenter can replay on stage.

A 14-server fleet runs normally for two and a half days. Then, on Wednesday 2026-03-11 (UTC):

    06:00-12:00  baseline     every server inside its daily rhythm
    12:00-18:00  escalation   ppdb001 leaks memory: memory climbs, swap starts, CLOSE_WAIT grows;
                              pprisk001 has a harmless 25-minute CPU burst at the market open
    18:00-20:00  critical     ppdb001 past 95% memory, swapping hard, connections piling up
    20:00-24:00  recovery     the database is restarted; swap is freed, sockets clear

The phases, the incident server and the harmless spike are written to the manifest, so the demo
page, the tests and the benchmark read them from there instead of repeating them.
"""

from __future__ import annotations

from dataclasses import asdict

from argus_core.data.simulate import ScriptedIncident, ScriptedSpike, SimConfig, Simulation, simulate_fleet

DEMO_SEED = 42
DEMO_CONFIG = SimConfig(
    hours=72.0,
    seed=DEMO_SEED,
    start="2026-03-09T00:00:00+00:00",  # a Monday; US daylight time started on 2026-03-08
    composition={"DATABASE": 3, "WEB_API": 4, "ML_COMPUTE": 2, "DATA_INGEST": 2,
                 "RISK_ANALYTICS": 1, "CONDUCTOR_MGMT": 1, "GENERIC": 1},
)
INCIDENT_SERVER = "ppdb001"
PHASES = (
    ("baseline", "2026-03-11T06:00:00+00:00", "2026-03-11T12:00:00+00:00",
     "All servers are inside their normal daily rhythm."),
    ("escalation", "2026-03-11T12:00:00+00:00", "2026-03-11T18:00:00+00:00",
     "ppdb001 is leaking memory: usage climbs, swap starts, CLOSE_WAIT sockets pile up."),
    ("critical", "2026-03-11T18:00:00+00:00", "2026-03-11T20:00:00+00:00",
     "ppdb001 is past 95% memory and swapping hard; queries stall."),
    ("recovery", "2026-03-11T20:00:00+00:00", "2026-03-11T23:55:00+00:00",
     "ppdb001 was restarted: memory is back, swap is freed, connections clear."),
)
INCIDENT = ScriptedIncident(
    server_name=INCIDENT_SERVER,
    kind="memory_leak",
    precursor_start=PHASES[1][1],
    breach_time=PHASES[2][1],
    end_time=PHASES[3][1],
)
SPIKE = ScriptedSpike(server_name="pprisk001", start="2026-03-11T13:30:00+00:00", minutes=25, peak_cpu=86.0)


def demo_simulation() -> Simulation:
    """The scenario's data and ground truth; the same bytes every time."""
    return simulate_fleet(DEMO_CONFIG, scripted=(INCIDENT,), spikes=(SPIKE,))


def demo_manifest_extra(sim: Simulation) -> dict:
    """What the manifest records about the scenario, beside the generic dataset fields."""
    return {
        "generator": sim.settings,
        "problem_children": sim.problem_children,
        "scenario": {
            "name": "Database memory leak",
            "incident_server": INCIDENT_SERVER,
            "incident": asdict(INCIDENT),
            "harmless_spike": {**asdict(SPIKE), "note": "a burst at the open; must not be read as an incident"},
            "phases": [{"name": n, "start": s, "end": e, "narrative": text} for n, s, e, text in PHASES],
        },
    }

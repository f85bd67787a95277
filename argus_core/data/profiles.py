"""Server profiles: naming patterns, baselines and daily/weekly rhythms of a trading firm's fleet.

A profile is a static input of the model, so a server never seen in training is forecast from
its profile's learned behaviour. Rhythms are written in the exchange's local time: market open
09:30, close 16:00, end-of-day batch 16:00-19:00, overnight ML training, a weekend batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from argus_core.errors import SettingsError


@dataclass(frozen=True)
class Rhythm:
    """Weights of the activity windows; activity = base + sum(weight * window), roughly 0..1."""

    base: float  # floor of activity at quiet hours
    market: float = 0.0  # weekdays 09:30-16:00
    market_open: float = 0.0  # weekdays 09:30-10:30, the open's burst of orders and logins
    eod_batch: float = 0.0  # weekdays 16:00-19:00, end-of-day reconciliation and risk runs
    overnight: float = 0.0  # every night 22:00-06:00, ML training and backfills
    weekend_batch: float = 0.0  # Saturday 06:00-14:00, the weekly heavy jobs


@dataclass(frozen=True)
class Profile:
    name: str
    patterns: tuple[str, ...]  # lower-case substrings of a host name that identify the profile
    name_format: str  # how the simulator names its servers
    cpu_low: float  # CPU busy % (user+sys) at activity 0
    cpu_high: float  # CPU busy % at activity 1
    mem_mean: float  # mean memory used %; servers spread within +-mem_spread of it
    mem_spread: float
    iowait_mean: float  # mean CPU iowait %, the disk I/O pressure
    net_mean: float  # mean inbound MB/s at activity 0.5
    net_spread: float  # server-to-server spread of net_mean
    disk_mean: float  # mean disk usage %
    cores: int  # load average scales with the core count
    java_share: float  # share of user CPU spent in JVMs
    close_wait_base: float  # typical CLOSE_WAIT sockets
    incident_kinds: tuple[str, ...]  # incidents typical of this profile
    rhythm: Rhythm


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "ML_COMPUTE", ("ppml", "ppgpu", "cptrain"), "ppml{:04d}",
            cpu_low=20, cpu_high=72, mem_mean=58, mem_spread=8, iowait_mean=3, net_mean=40, net_spread=15,
            disk_mean=60, cores=32, java_share=0.0, close_wait_base=2,
            incident_kinds=("runaway_cpu", "disk_filling", "memory_leak"),
            rhythm=Rhythm(base=0.1, market=0.15, overnight=0.85, weekend_batch=0.6),
        ),
        Profile(
            "DATABASE", ("ppdb", "psdb", "oracle", "mongo", "postgres"), "ppdb{:03d}",
            cpu_low=10, cpu_high=60, mem_mean=72, mem_spread=6, iowait_mean=8, net_mean=60, net_spread=20,
            disk_mean=65, cores=32, java_share=0.0, close_wait_base=10,
            incident_kinds=("memory_leak", "disk_filling", "close_wait_pileup"),
            rhythm=Rhythm(base=0.15, market=0.55, market_open=0.25, eod_batch=0.7, overnight=0.1),
        ),
        Profile(
            "WEB_API", ("ppweb", "ppapi", "nginx", "tomcat"), "ppweb{:03d}",
            cpu_low=8, cpu_high=65, mem_mean=50, mem_spread=8, iowait_mean=1, net_mean=80, net_spread=30,
            disk_mean=40, cores=16, java_share=0.6, close_wait_base=15,
            incident_kinds=("close_wait_pileup", "memory_leak", "network_saturation"),
            rhythm=Rhythm(base=0.05, market=0.8, market_open=0.3, eod_batch=0.1),
        ),
        Profile(
            "CONDUCTOR_MGMT", ("ppcon", "conductor", "egomgmt"), "ppcon{:03d}",
            cpu_low=10, cpu_high=35, mem_mean=45, mem_spread=5, iowait_mean=1, net_mean=20, net_spread=8,
            disk_mean=35, cores=16, java_share=0.7, close_wait_base=8,
            incident_kinds=("close_wait_pileup", "memory_leak"),
            rhythm=Rhythm(base=0.3, market=0.4, eod_batch=0.5, overnight=0.4),
        ),
        Profile(
            "DATA_INGEST", ("ppetl", "ppkafka", "stream", "spark"), "ppetl{:03d}",
            cpu_low=15, cpu_high=66, mem_mean=60, mem_spread=8, iowait_mean=6, net_mean=200, net_spread=70,
            disk_mean=70, cores=32, java_share=0.5, close_wait_base=12,
            incident_kinds=("disk_filling", "network_saturation"),
            rhythm=Rhythm(base=0.2, market=0.5, eod_batch=0.9, weekend_batch=0.7),
        ),
        Profile(
            "RISK_ANALYTICS", ("pprisk", "varrisk", "credit"), "pprisk{:03d}",
            cpu_low=10, cpu_high=70, mem_mean=65, mem_spread=8, iowait_mean=2, net_mean=30, net_spread=10,
            disk_mean=50, cores=32, java_share=0.3, close_wait_base=5,
            incident_kinds=("runaway_cpu", "memory_leak"),
            rhythm=Rhythm(base=0.1, market=0.5, market_open=0.2, eod_batch=0.9, weekend_batch=0.3),
        ),
        Profile(
            "GENERIC", (), "ppsrv{:03d}",
            cpu_low=5, cpu_high=30, mem_mean=40, mem_spread=10, iowait_mean=2, net_mean=15, net_spread=8,
            disk_mean=45, cores=16, java_share=0.0, close_wait_base=4,
            incident_kinds=("runaway_cpu", "disk_filling"),
            rhythm=Rhythm(base=0.2, market=0.3),
        ),
    )
}
PROFILE_NAMES = tuple(PROFILES)
GENERIC = "GENERIC"

# The default fleet of 90, largest first.
DEFAULT_FLEET: dict[str, int] = {
    "WEB_API": 25,
    "ML_COMPUTE": 20,
    "DATABASE": 15,
    "DATA_INGEST": 10,
    "RISK_ANALYTICS": 8,
    "GENERIC": 7,
    "CONDUCTOR_MGMT": 5,
}


def infer_profile(server_name: str) -> str:
    """The profile whose naming pattern the name contains (case-insensitive), else GENERIC."""
    lowered = str(server_name).lower()
    for profile in PROFILES.values():
        if any(pattern in lowered for pattern in profile.patterns):
            return profile.name
    return GENERIC


def infer_profiles(server_names: np.ndarray) -> np.ndarray:
    """``infer_profile`` for many names at once (each distinct name is matched once)."""
    unique, inverse = np.unique(np.asarray(server_names, dtype=object).astype(str), return_inverse=True)
    return np.array([infer_profile(name) for name in unique], dtype=object)[inverse]


def fleet_composition(servers: int | None = None, fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Servers per profile: ``fixed`` counts as given, the rest shared in the default fleet's proportions.

    Raises SettingsError when the fixed counts exceed ``servers`` or name an unknown profile.
    """
    fixed = dict(fixed or {})
    unknown = set(fixed) - set(PROFILES)
    if unknown:
        raise SettingsError(f"unknown profile(s): {', '.join(sorted(unknown))}")
    if any(count < 0 for count in fixed.values()):
        raise SettingsError("server counts cannot be negative")
    if servers is None:
        servers = sum(fixed.values()) if fixed else sum(DEFAULT_FLEET.values())
    rest = servers - sum(fixed.values())
    if rest < 0:
        raise SettingsError(f"the per-profile counts add up to {sum(fixed.values())}, more than --servers {servers}")
    free = {name: weight for name, weight in DEFAULT_FLEET.items() if name not in fixed}
    counts = dict(fixed)
    if free:
        total = sum(free.values())
        exact = {name: rest * weight / total for name, weight in free.items()}
        shares = {name: int(value) for name, value in exact.items()}
        # largest remainder, ties broken by the default fleet's order
        leftovers = sorted(free, key=lambda n: exact[n] - shares[n], reverse=True)
        for name in leftovers[: rest - sum(shares.values())]:
            shares[name] += 1
        counts.update(shares)
    elif rest:
        raise SettingsError(f"every profile has a count but they add up to {servers - rest}, not {servers}")
    return {name: counts.get(name, 0) for name in PROFILE_NAMES if counts.get(name, 0) > 0}


def fleet_names(composition: dict[str, int]) -> list[tuple[str, str]]:
    """(server_name, profile) for a composition, with realistic names (ppweb001, ppml0001, ...)."""
    fleet = []
    for name, count in composition.items():
        fmt = PROFILES[name].name_format
        fleet += [(fmt.format(i + 1), name) for i in range(count)]
    return sorted(fleet)


_DISPLAY = {"ML_COMPUTE": "ML compute", "DATABASE": "Database", "WEB_API": "Web API",
            "CONDUCTOR_MGMT": "Conductor / management", "DATA_INGEST": "Data ingest",
            "RISK_ANALYTICS": "Risk analytics", "GENERIC": "Generic"}


def display_name(profile: object) -> str:
    """A profile as people read it on a page: ``DATA_INGEST`` -> "Data ingest" (an unknown one,
    spaced and capitalised)."""
    name = str(profile)
    return _DISPLAY.get(name) or (name.replace("_", " ").strip().capitalize() or name)

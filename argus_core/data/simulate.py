"""Vectorised fleet simulator: servers x time arrays, never a per-row Python loop.

Metrics are built in dependency order so they stay coherent: activity (profile rhythm + noise)
-> CPU work, iowait, memory, disk, network, CLOSE_WAIT; incidents ramp their primary metric
before the dependent ones are derived (swap from memory pressure, load from CPU, back-side
CLOSE_WAIT from swapping, idle = 100 - user - sys - iowait). Every injected incident lands in
a ground-truth table whose breach time is read off the generated data, not assumed.

Python loops run over incidents and maintenance windows (dozens), each a vectorised slice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.data.profiles import PROFILES, Rhythm, fleet_composition, fleet_names
from argus_core.errors import SettingsError

# Incident kinds: the metric that breaches, how long the precursor lasts (hours, min..max).
INCIDENT_KINDS: dict[str, tuple[str, tuple[float, float]]] = {
    "memory_leak": ("mem_used_pct", (6.0, 18.0)),
    "disk_filling": ("disk_usage_pct", (12.0, 36.0)),
    "close_wait_pileup": ("back_close_wait", (3.0, 8.0)),
    "runaway_cpu": (schema.CPU_BUSY, (2.0, 6.0)),
    "network_saturation": ("net_in_mb_s", (2.0, 5.0)),
}
CHRONIC_ISSUES = ("high_memory", "leaky_connections", "noisy_cpu", "slow_disk")

STATUS_CODE = {name: code for code, name in enumerate(schema.STATUS_VALUES)}
INCIDENT_COLUMNS = (
    "server_name", "profile", "kind", "metric", "threshold",
    "precursor_start", "breach_time", "end_time", "peak_value",
)


@dataclass(frozen=True)
class SimConfig:
    """How a fleet is simulated; ``asdict`` goes into the dataset manifest."""

    servers: int | None = None  # None: the sum of ``composition``, or the default 90
    hours: float = 720.0
    seed: int = 7
    step: str = schema.DEFAULT_STEP
    start: str = "2026-01-05T00:00:00+00:00"  # a Monday; fixed so a seed alone decides the output
    composition: dict[str, int] = field(default_factory=dict)  # profile -> count fixed by the user
    incident_rate: float = 0.012  # incidents per server-day: ~32 on the default 90 x 30 days
    problem_child_share: float = 0.06  # servers with a chronic issue
    maintenance_share: float = 0.5  # share of servers patched on any given weekend
    offline_rate: float = 0.01  # unplanned outages per server-day
    market_timezone: str = "America/New_York"  # rhythms follow the exchange's local clock


@dataclass(frozen=True)
class ScriptedIncident:
    """An incident placed by hand (the demo scenario) instead of sampled."""

    server_name: str
    kind: str
    precursor_start: str
    breach_time: str  # when the ramp is meant to cross the critical threshold
    end_time: str  # remediation (restart, cleanup, kill)


@dataclass(frozen=True)
class ScriptedSpike:
    """A short harmless CPU burst: high, but under the critical threshold and gone quickly."""

    server_name: str
    start: str
    minutes: int
    peak_cpu: float


@dataclass
class Simulation:
    frame: pd.DataFrame  # long frame in the schema v1 contract, sorted by server then time
    incidents: pd.DataFrame  # ground truth, INCIDENT_COLUMNS
    servers: dict[str, str]  # server -> profile
    problem_children: dict[str, str]  # server -> chronic issue
    settings: dict


MAX_HOURS = 24 * 366 * 5  # five years: more is a typo, and would not fit in memory for a large fleet


def check(config: SimConfig) -> None:
    """SettingsError naming the first setting out of range."""
    hours = config.hours
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours) or hours <= 0:
        raise SettingsError(f"hours must be a positive number, not {hours!r}")
    if hours > MAX_HOURS:
        raise SettingsError(f"hours must be at most {MAX_HOURS:,} (five years), not {hours:,}")
    if config.servers is not None and (not isinstance(config.servers, int) or config.servers < 1):
        raise SettingsError(f"servers must be a positive whole number, not {config.servers!r}")
    if not 0 <= config.incident_rate <= 10:
        raise SettingsError(f"incident_rate must be between 0 and 10 per server-day, not {config.incident_rate!r}")
    schema.parse_step(config.step)
    try:
        start = pd.Timestamp(config.start)
    except ValueError as exc:
        raise SettingsError(f"start {config.start!r} is not an ISO 8601 time") from exc
    if pd.isna(start) or not 1970 <= start.year <= 2200:
        raise SettingsError(f"start {config.start!r} must be a time between 1970 and 2200")


def simulate_fleet(
    config: SimConfig,
    scripted: tuple[ScriptedIncident, ...] | None = None,
    spikes: tuple[ScriptedSpike, ...] = (),
) -> Simulation:
    """Simulate a fleet. With ``scripted`` given, only those incidents happen and there are no
    random outages, maintenance or chronic issues (the demo must run the same every time).
    SettingsError when a setting is out of range (``check``).

    Every phase draws from one generator in a fixed order: same seed, same bytes."""
    check(config)
    rng = np.random.default_rng(config.seed)
    composition = fleet_composition(config.servers, config.composition or None)
    fleet = fleet_names(composition)
    names = [name for name, _ in fleet]
    profile_names = [profile for _, profile in fleet]
    step = pd.Timedelta(config.step)
    n_steps = int(round(pd.Timedelta(hours=config.hours) / step))
    if not fleet or n_steps == 0:
        raise SettingsError("a fleet needs at least one server and one step")
    sim = _Frame(config, names, profile_names,
                 pd.date_range(pd.Timestamp(config.start), periods=n_steps, freq=step, tz="UTC"))
    _activity(rng, sim)
    chronic = _pick_problem_children(rng, names, config, scripted is not None)
    sim.chronic = np.array([chronic.get(name, "") for name in names])
    _base_metrics(rng, sim)
    plans = _events(rng, sim, scripted, spikes)
    metrics, busy = _derived_metrics(rng, sim)
    status = _status_codes(sim, metrics, busy)
    return Simulation(
        frame=_long_frame(sim.times, names, profile_names, status, metrics),
        incidents=_ground_truth(plans, names, profile_names, metrics, busy, sim.times),
        servers=dict(fleet),
        problem_children={name: issue for name, issue in chronic.items()},
        settings={**asdict(config), "composition": composition},
    )


class _Frame:
    """The arrays of one simulation, (servers, steps) each, filled phase by phase."""

    def __init__(self, config: SimConfig, names: list[str], profile_names: list[str], times: pd.DatetimeIndex):
        self.config, self.names, self.profile_names, self.times = config, names, profile_names, times
        self.profiles = [PROFILES[p] for p in profile_names]
        self.shape = (len(names), len(times))
        self.step_hours = pd.Timedelta(config.step) / pd.Timedelta(hours=1)
        self.local = times.tz_convert(config.market_timezone)
        self.hour = np.asarray(self.local.hour + self.local.minute / 60.0)  # (T,)
        self.weekday = np.asarray(self.local.weekday)

    def per_server(self, attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for p in self.profiles], dtype=np.float64)[:, None]  # (S, 1)


def _activity(rng: np.random.Generator, sim: _Frame) -> None:
    """Profile rhythm x server scale + slow AR(1) wander + weekly cycle."""
    n_servers, _ = sim.shape
    sim.curves = {p: _rhythm_curve(PROFILES[p].rhythm, sim.hour, sim.weekday) for p in sorted(set(sim.profile_names))}
    activity = np.stack([sim.curves[p] for p in sim.profile_names])  # (S, T)
    activity *= rng.uniform(0.85, 1.15, (n_servers, 1))
    activity += _ar1(rng, sim.shape, phi=0.97, sigma=0.02)
    sim.activity = np.clip(activity, 0.0, 1.05)  # busy hours run hot, but not critical


def _base_metrics(rng: np.random.Generator, sim: _Frame) -> None:
    """CPU work and iowait, memory, disk, network and the CLOSE_WAIT level, before any event."""
    n_servers, _ = sim.shape
    chronic_of, activity, per_server = sim.chronic, sim.activity, sim.per_server
    # CPU work (user + sys) and iowait
    cpu_noise = np.where(chronic_of == "noisy_cpu", 7.0, 2.5)[:, None]
    work = per_server("cpu_low") + (per_server("cpu_high") - per_server("cpu_low")) * activity
    work += rng.normal(0, 3.0, (n_servers, 1)) + np.where(chronic_of == "noisy_cpu", 8.0, 0.0)[:, None]
    sim.work = work + rng.normal(0, 1.0, sim.shape) * cpu_noise
    iowait = per_server("iowait_mean") * (0.5 + activity) * np.where(chronic_of == "slow_disk", 3.0, 1.0)[:, None]
    sim.iowait = iowait + np.abs(rng.normal(0, 0.6, sim.shape))
    # memory: a server's own level + a small swing with activity + slow wander
    mem_level = per_server("mem_mean") + rng.uniform(-0.6, 0.6, (n_servers, 1)) * per_server("mem_spread")
    mem_level += np.where(chronic_of == "high_memory", 12.0, 0.0)[:, None]
    profile_mean_activity = np.stack([sim.curves[p].mean() for p in sim.profile_names])[:, None]
    mem = mem_level + 6.0 * (activity - profile_mean_activity) + _ar1(rng, sim.shape, 0.995, 0.15)
    sim.mem = mem + rng.normal(0, 0.4, sim.shape)
    # disk: daily growth of logs, rotated at local midnight
    day_fraction = (sim.hour / 24.0)[None, :]
    disk = per_server("disk_mean") + rng.uniform(-10, 10, (n_servers, 1))
    sim.disk = disk + rng.uniform(0.5, 2.5, (n_servers, 1)) * day_fraction + rng.normal(0, 0.05, sim.shape)
    # network and connections
    net_level = np.maximum(per_server("net_mean") + rng.normal(0, 1, (n_servers, 1)) * per_server("net_spread"), 2.0)
    sim.net_in = net_level * (0.3 + 1.4 * activity) * rng.lognormal(0, 0.08, sim.shape)
    sim.net_out = sim.net_in * rng.uniform(0.4, 1.4, (n_servers, 1)) * rng.lognormal(0, 0.05, sim.shape)
    sim.cw_level = per_server("close_wait_base") * np.where(chronic_of == "leaky_connections", 6.0, 1.0)[:, None]
    sim.back_cw_add = np.zeros(sim.shape)
    sim.front_cw_add = np.zeros(sim.shape)


def _events(rng: np.random.Generator, sim: _Frame, scripted: tuple[ScriptedIncident, ...] | None,
            spikes: tuple[ScriptedSpike, ...]) -> list:
    """Maintenance, outages, incidents (random, or only the scripted ones) and CPU spikes, applied
    to the arrays; the incident plans (their ground truth)."""
    config, n_steps = sim.config, sim.shape[1]
    sim.status_masks = {name: np.zeros(sim.shape, dtype=bool) for name in schema.STATUS_VALUES}
    sim.reboots = np.zeros(sim.shape, dtype=bool)
    if scripted is None:
        _maintenance(rng, config, sim.local, sim.status_masks, sim.reboots, sim.step_hours)
        _outages(rng, config, sim.status_masks, sim.reboots, sim.step_hours)
        plans = _sample_incidents(rng, config, sim.profiles, n_steps, sim.step_hours)
    else:
        plans = [_scripted_plan(s, sim.names, sim.times) for s in scripted]
    for plan in plans:
        _apply_incident(rng, plan, work=sim.work, mem=sim.mem, disk=sim.disk, net_in=sim.net_in, net_out=sim.net_out,
                        back_cw_add=sim.back_cw_add, front_cw_add=sim.front_cw_add, reboots=sim.reboots,
                        recovery=sim.status_masks["recovery"], step_hours=sim.step_hours)
    index_of = {name: i for i, name in enumerate(sim.names)}
    for spike in spikes:
        s = index_of[spike.server_name]
        t0 = sim.times.get_loc(pd.Timestamp(spike.start))
        width = max(1, int(round(spike.minutes / (sim.step_hours * 60))))
        shape = np.interp(np.arange(width + 2), [0, 1, width, width + 1], [0.0, 1.0, 1.0, 0.0])
        span = slice(t0, min(n_steps, t0 + width + 2))
        sim.work[s, span] = np.maximum(sim.work[s, span], shape[: span.stop - t0] * spike.peak_cpu)
    # quiet hosts during maintenance and outages
    sim.down = sim.status_masks["maintenance"] | sim.status_masks["offline"]
    sim.work = np.where(sim.down, 2.0, sim.work)
    sim.iowait = np.where(sim.down, 0.2, sim.iowait)
    sim.net_in = np.where(sim.down, 0.05, sim.net_in)
    sim.net_out = np.where(sim.down, 0.05, sim.net_out)
    return plans


def _derived_metrics(rng: np.random.Generator, sim: _Frame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The contract's metrics from the arrays (CPU split, swap under memory pressure, load,
    CLOSE_WAIT, uptime since the last reboot), and CPU busy."""
    n_servers, n_steps = sim.shape
    work = np.clip(sim.work, 0.5, 99.0)
    iowait = np.clip(sim.iowait, 0.0, 99.5 - work)
    sys_share = rng.uniform(0.15, 0.3, (n_servers, 1))
    cpu_user = np.round(work * (1 - sys_share), 2)
    cpu_sys = np.round(work * sys_share, 2)
    cpu_iowait = np.round(iowait, 2)
    cpu_idle = np.round(np.clip(100.0 - cpu_user - cpu_sys - cpu_iowait, 0.0, 100.0), 2)
    java_share = sim.per_server("java_share") * rng.uniform(0.8, 1.1, (n_servers, 1))
    java_cpu = np.round(cpu_user * np.clip(java_share, 0, 1), 2)

    mem = np.clip(sim.mem, 1.0, 99.8)
    # Swap fills only under memory pressure and drains slowly (pages stay swapped out).
    pressure = 4.5 * np.maximum(mem - 85.0, 0.0)
    swap_base = rng.uniform(0.0, 2.0, (n_servers, 1))
    swap = swap_base + _forget_at_reboots(_smooth(pressure, 0.85, 0.15), sim.reboots, 0.85)
    swap = np.clip(swap, 0.0, 100.0)

    instantaneous = sim.per_server("cores") * (work + 0.5 * iowait) / 100.0
    load = _smooth(instantaneous, 0.5, 0.5) + np.abs(rng.normal(0, 0.1, sim.shape))

    # Swapping slows every request: the back side piles up CLOSE_WAIT sockets with it.
    lam = sim.cw_level * (0.5 + sim.activity)
    back_cw = rng.poisson(lam) + np.round(sim.back_cw_add + 8.0 * np.maximum(swap - 10.0, 0.0))
    front_cw = rng.poisson(0.6 * lam) + np.round(sim.front_cw_add)

    disk = np.clip(sim.disk, 0.0, 100.0)

    offline, down = sim.status_masks["offline"], sim.down
    mem = np.where(offline, 0.0, mem)
    swap = np.where(offline, 0.0, swap)
    load = np.where(offline, 0.0, load)
    back_cw = np.where(down, 0, back_cw)
    front_cw = np.where(down, 0, front_cw)
    cpu_idle = np.where(offline, 100.0, cpu_idle)
    for arr in (cpu_user, cpu_sys, cpu_iowait, java_cpu):
        arr[offline] = 0.0

    # uptime: days since the last reboot (end of maintenance/outage, remediation restarts)
    initial_days = rng.uniform(5, 120, (n_servers, 1))
    step_index = np.broadcast_to(np.arange(n_steps), sim.shape)
    last_reboot = np.maximum.accumulate(np.where(sim.reboots, step_index, -1), axis=1)
    uptime = np.where(last_reboot < 0, initial_days + step_index * sim.step_hours / 24.0,
                      (step_index - last_reboot) * sim.step_hours / 24.0)
    uptime = np.where(offline, 0.0, uptime)
    metrics = {
        "cpu_user_pct": cpu_user, "cpu_sys_pct": cpu_sys, "cpu_iowait_pct": cpu_iowait, "cpu_idle_pct": cpu_idle,
        "java_cpu_pct": java_cpu, "mem_used_pct": np.round(mem, 2), "swap_used_pct": np.round(swap, 2),
        "disk_usage_pct": np.round(disk, 2), "net_in_mb_s": np.round(sim.net_in, 2),
        "net_out_mb_s": np.round(sim.net_out, 2), "back_close_wait": back_cw, "front_close_wait": front_cw,
        "load_average": np.round(load, 2), "uptime_days": np.round(uptime, 4),
    }
    return metrics, 100.0 - cpu_idle


def _status_codes(sim: _Frame, metrics: dict[str, np.ndarray], busy: np.ndarray) -> np.ndarray:
    """Each step's status: the events' masks, a market-open spike, heavy load, a critical value."""
    masks = sim.status_masks
    opening = _window(sim.hour, 9.5, 10.5)[None, :] * (sim.weekday < 5)[None, :] > 0.5
    market_sensitive = np.array([p.rhythm.market_open > 0 for p in sim.profiles])[:, None]
    masks["morning_spike"] |= opening & market_sensitive & (busy > sim.per_server("cpu_low") + 20)
    masks["heavy_load"] |= busy >= 75.0
    critical = np.zeros(sim.shape, dtype=bool)
    for metric, threshold in schema.THRESHOLDS.items():
        values = busy if metric == schema.CPU_BUSY else metrics[metric]
        critical |= values >= threshold.critical
    masks["critical"] |= critical
    status = np.zeros(sim.shape, dtype=np.int8)
    for name in schema.STATUS_VALUES[1:]:  # later states override earlier ones
        status[masks[name]] = STATUS_CODE[name]
    return status


# --- rhythm ---------------------------------------------------------------------------------------

def _window(hour: np.ndarray, start: float, end: float, edge: float = 0.15) -> np.ndarray:
    """Smooth 0..1 indicator of start <= hour < end (edges ~10 minutes wide); wraps past midnight."""
    def rise(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x / edge))
    if start < end:
        return rise(hour - start) * rise(end - hour)
    return np.maximum(rise(hour - start), rise(end - hour))


def _rhythm_curve(rhythm: Rhythm, hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    weekdays = (weekday < 5).astype(float)
    # weekly cycle: Monday's catch-up is busiest, Friday afternoon quietest
    week_factor = np.array([1.06, 1.0, 1.0, 0.98, 0.92, 1.0, 1.0])[weekday]
    curve = np.full(hour.shape, rhythm.base)
    curve += rhythm.market * _window(hour, 9.5, 16.0) * weekdays * week_factor
    curve += rhythm.market_open * _window(hour, 9.5, 10.5) * weekdays
    curve += rhythm.eod_batch * _window(hour, 16.0, 19.0) * weekdays * week_factor
    curve += rhythm.overnight * _window(hour, 22.0, 6.0)
    curve += rhythm.weekend_batch * _window(hour, 6.0, 14.0) * (weekday == 5)
    return curve


def _smooth(x: np.ndarray, pole: float, gain: float) -> np.ndarray:
    """y[t] = gain * x[t] + pole * y[t-1] along time (y[0] = gain * x[0]) for every server at once.

    pandas' exponentially weighted mean runs y[t] = (1 - pole) * x[t] + pole * y[t-1] in
    compiled code, starting from y[0] = x[0]; scaling the first input and the output fits it."""
    x = np.array(x, dtype=np.float64, copy=True)
    x[:, 0] *= 1.0 - pole
    ewm = pd.DataFrame(x.T).ewm(alpha=1.0 - pole, adjust=False).mean().to_numpy().T
    return ewm * (gain / (1.0 - pole))


def _forget_at_reboots(smoothed: np.ndarray, reboots: np.ndarray, pole: float) -> np.ndarray:
    """Restart a smoothed series from zero at every reboot: a restarted process frees its swap.

    Subtracts the state carried over the reboot as it would have decayed (one slice per reboot)."""
    out = smoothed.copy()
    horizon = int(np.ceil(np.log(1e-4) / np.log(pole)))  # steps until the carried state is negligible
    decay = pole ** np.arange(1, horizon + 1)
    for s, r in np.argwhere(reboots[:, 1:]) + (0, 1):
        span = min(horizon, out.shape[1] - r)
        out[s, r:r + span] -= smoothed[s, r - 1] * decay[:span]
    return np.maximum(out, 0.0)


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, sigma: float) -> np.ndarray:
    """AR(1) noise along time for every server at once, started in its stationary spread."""
    shocks = rng.normal(0, sigma, shape)
    shocks[:, 0] *= 1.0 / np.sqrt(1.0 - phi**2)
    return _smooth(shocks, phi, 1.0)


# --- events -----------------------------------------------------------------------------------------

def _pick_problem_children(rng: np.random.Generator, names: list[str], config: SimConfig,
                           scripted: bool) -> dict[str, str]:
    if scripted:
        return {}
    count = int(round(config.problem_child_share * len(names)))
    chosen = rng.choice(len(names), size=min(count, len(names)), replace=False)
    issues = rng.choice(CHRONIC_ISSUES, size=len(chosen))
    return {names[i]: str(issue) for i, issue in sorted(zip(chosen, issues, strict=True))}


def _maintenance(rng: np.random.Generator, config: SimConfig, local: pd.DatetimeIndex,
                 masks: dict[str, np.ndarray], reboots: np.ndarray, step_hours: float) -> None:
    """Patch windows on Saturday night local time: down 1-2 h, reboot, 30 min of recovery."""
    n_servers, n_steps = reboots.shape
    saturday_2am = np.flatnonzero((local.weekday == 5) & (local.hour == 2) & (local.minute == 0))
    for t0 in saturday_2am:
        chosen = np.flatnonzero(rng.random(n_servers) < config.maintenance_share)
        offsets = rng.integers(0, int(3 / step_hours), len(chosen))
        lengths = rng.integers(int(1 / step_hours), int(2 / step_hours) + 1, len(chosen))
        for s, offset, length in zip(chosen, offsets, lengths, strict=True):
            start, end = t0 + offset, min(n_steps, t0 + offset + length)
            masks["maintenance"][s, start:end] = True
            if end < n_steps:
                reboots[s, end] = True
                masks["recovery"][s, end:end + int(0.5 / step_hours)] = True


def _outages(rng: np.random.Generator, config: SimConfig, masks: dict[str, np.ndarray],
             reboots: np.ndarray, step_hours: float) -> None:
    n_servers, n_steps = reboots.shape
    days = n_steps * step_hours / 24.0
    counts = rng.poisson(config.offline_rate * days, n_servers)
    for s in np.flatnonzero(counts):
        for _ in range(counts[s]):
            start = int(rng.integers(0, n_steps))
            end = min(n_steps, start + int(rng.integers(int(0.25 / step_hours), int(1.5 / step_hours))))
            masks["offline"][s, start:end] = True
            if end < n_steps:
                reboots[s, end] = True
                masks["recovery"][s, end:end + int(0.5 / step_hours)] = True


@dataclass(frozen=True)
class _Plan:
    server: int
    kind: str
    start: int  # precursor start (step index)
    breach: int  # intended crossing of the critical threshold
    end: int  # remediation; exclusive


def _scripted_plan(incident: ScriptedIncident, names: list[str], times: pd.DatetimeIndex) -> _Plan:
    if incident.kind not in INCIDENT_KINDS:
        raise ValueError(f"unknown incident kind {incident.kind!r}")
    return _Plan(
        server=names.index(incident.server_name),
        kind=incident.kind,
        start=times.get_loc(pd.Timestamp(incident.precursor_start)),
        breach=times.get_loc(pd.Timestamp(incident.breach_time)),
        end=times.get_loc(pd.Timestamp(incident.end_time)),
    )


def _sample_incidents(rng: np.random.Generator, config: SimConfig, profiles: list, n_steps: int,
                      step_hours: float) -> list[_Plan]:
    """Poisson incidents per server, kinds typical of the profile, never overlapping on a server.

    Precursors start after the first day when there is one, so a forecaster has history."""
    days = n_steps * step_hours / 24.0
    earliest = int(24 / step_hours) if days >= 3 else 0
    plans: list[_Plan] = []
    counts = rng.poisson(config.incident_rate * days, len(profiles))
    for s in np.flatnonzero(counts):
        busy_until = earliest
        starts = np.sort(rng.integers(earliest, n_steps, counts[s]))
        for start in starts:
            kind = str(rng.choice(profiles[s].incident_kinds))
            low, high = INCIDENT_KINDS[kind][1]
            precursor = int(rng.uniform(low, high) / step_hours)
            peak = int(rng.uniform(0.5, 3.0) / step_hours)
            start = max(int(start), busy_until)
            breach, end = start + precursor, start + precursor + peak
            if end >= n_steps:
                break
            plans.append(_Plan(int(s), kind, start, breach, end))
            busy_until = end + int(2 / step_hours)
    return plans


def _ramp(length: int, power: float) -> np.ndarray:
    """0 -> 1 over ``length`` steps; power > 1 starts slow and accelerates (leaks, pile-ups)."""
    return (np.arange(1, length + 1) / length) ** power


def _apply_incident(rng: np.random.Generator, plan: _Plan, *, work: np.ndarray, mem: np.ndarray,
                    disk: np.ndarray, net_in: np.ndarray, net_out: np.ndarray, back_cw_add: np.ndarray,
                    front_cw_add: np.ndarray, reboots: np.ndarray, recovery: np.ndarray,
                    step_hours: float) -> None:
    s, a, b, e = plan.server, plan.start, plan.breach, plan.end
    n_steps = work.shape[1]
    rise = b - a
    peak_noise = rng.normal(0, 0.6, e - b)
    after = slice(e, min(n_steps, e + int(1.5 / step_hours)))
    if plan.kind == "memory_leak":
        # the leak climbs from today's level to just past critical at b, then holds until restart
        target = schema.THRESHOLDS["mem_used_pct"].critical + 2.5
        ramp = mem[s, a] + (target - mem[s, a]) * _ramp(rise, 1.3)
        mem[s, a:b] = np.maximum(mem[s, a:b], ramp)
        mem[s, b:e] = np.maximum(mem[s, b:e], target + peak_noise)
        reboots[s, min(e, n_steps - 1)] = True  # the fix is a restart
    elif plan.kind == "disk_filling":
        target = schema.THRESHOLDS["disk_usage_pct"].critical + 2.0
        ramp = disk[s, a] + (target - disk[s, a]) * _ramp(rise, 1.0)
        disk[s, a:b] = np.maximum(disk[s, a:b], ramp)
        disk[s, b:e] = np.maximum(disk[s, b:e], target + np.abs(peak_noise))
    elif plan.kind == "close_wait_pileup":
        target = schema.THRESHOLDS["back_close_wait"].critical * 1.3
        back_cw_add[s, a:b] += target * _ramp(rise, 2.0)
        back_cw_add[s, b:e] += target * (1 + 0.05 * peak_noise)
        front_cw_add[s, a:e] += 0.3 * back_cw_add[s, a:e]
        reboots[s, min(e, n_steps - 1)] = True
    elif plan.kind == "runaway_cpu":
        target = schema.THRESHOLDS[schema.CPU_BUSY].critical + 3.0
        ramp = work[s, a] + (target - work[s, a]) * _ramp(rise, 1.5)
        work[s, a:b] = np.maximum(work[s, a:b], ramp)
        work[s, b:e] = np.maximum(work[s, b:e], target + np.abs(peak_noise))
    elif plan.kind == "network_saturation":
        target = schema.THRESHOLDS["net_in_mb_s"].critical * 1.1
        ramp = net_in[s, a] + (target - net_in[s, a]) * _ramp(rise, 1.5)
        factor = np.maximum(ramp / np.maximum(net_in[s, a:b], 1e-3), 1.0)
        net_in[s, a:b] *= factor
        net_out[s, a:b] *= np.sqrt(factor)
        net_in[s, b:e] = np.maximum(net_in[s, b:e], target * (1 + 0.01 * peak_noise))
    recovery[s, after] = True


# --- output -----------------------------------------------------------------------------------------

def _long_frame(times: pd.DatetimeIndex, names: list[str], profile_names: list[str], status: np.ndarray,
                metrics: dict[str, np.ndarray]) -> pd.DataFrame:
    n_servers, n_steps = status.shape
    server_codes = np.repeat(np.arange(n_servers, dtype=np.int32), n_steps)
    profile_categories = sorted(set(profile_names))
    profile_codes = np.array([profile_categories.index(p) for p in profile_names], dtype=np.int8)
    data: dict[str, object] = {
        schema.TIMESTAMP: np.tile(times.tz_convert(None).as_unit("ns").to_numpy(), n_servers),
        schema.SERVER: pd.Categorical.from_codes(server_codes, categories=names),
        schema.STATUS: pd.Categorical.from_codes(status.ravel(), categories=list(schema.STATUS_VALUES)),
    }
    for col in schema.METRIC_COLUMNS:
        dtype = "int32" if col in schema.COUNT_COLUMNS else "float32"
        data[col] = metrics[col].ravel().astype(dtype)
    data[schema.PROFILE] = pd.Categorical.from_codes(np.repeat(profile_codes, n_steps),
                                                     categories=profile_categories)
    frame = pd.DataFrame(data)
    frame[schema.TIMESTAMP] = frame[schema.TIMESTAMP].dt.tz_localize("UTC")
    return frame


def _ground_truth(plans: list[_Plan], names: list[str], profile_names: list[str],
                  metrics: dict[str, np.ndarray], busy: np.ndarray, times: pd.DatetimeIndex) -> pd.DataFrame:
    rows = []
    for plan in plans:
        metric = INCIDENT_KINDS[plan.kind][0]
        values = busy[plan.server] if metric == schema.CPU_BUSY else metrics[metric][plan.server]
        threshold = schema.THRESHOLDS[metric].critical
        window = values[plan.start:plan.end]
        crossed = np.flatnonzero(window >= threshold)
        if len(crossed) == 0:  # noise kept it under; not a breach, so not ground truth
            continue
        rows.append({
            "server_name": names[plan.server],
            "profile": profile_names[plan.server],
            "kind": plan.kind,
            "metric": metric,
            "threshold": threshold,
            "precursor_start": times[plan.start],
            "breach_time": times[plan.start + crossed[0]],
            "end_time": times[min(plan.end, len(times) - 1)],
            "peak_value": float(window.max()),
        })
    frame = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS))
    for col in ("precursor_start", "breach_time", "end_time"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    frame["threshold"] = frame["threshold"].astype("float64")
    frame["peak_value"] = frame["peak_value"].astype("float64")
    return frame.sort_values(["breach_time", "server_name"], kind="stable").reset_index(drop=True)

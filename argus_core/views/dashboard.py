"""What the dashboard pages show, computed without Streamlit (and usable from a notebook).

``fleet_view(dataset, models)`` reads the manifest and resolves the model once
(``view_source``), reads the window of history the model needs up to an "as of" time and
assesses it (``fleet.assess``: forecast, thresholds, risk, levels, abnormal now) (``view_of``).
The functions below turn a ``FleetView`` into the frames each page draws: the ranking,
per-profile aggregates, sparklines and one server's detail. Raises ``ArgusError`` subclasses
with the command that fixes the problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core import anomaly, fleet
from argus_core.data import schema, store
from argus_core.data.profiles import display_name
from argus_core.errors import ArgusError, DatasetError
from argus_core.fleet import live_state
from argus_core.model import Forecaster, resolve_model_id, served_labels

SPARK_HOURS = 6  # history shown in a sparkline before the forecast part


@dataclass(frozen=True)
class LiveStatus:
    """How fresh a live service's snapshot is, for the banner and the stale marks."""

    generation: int
    created: pd.Timestamp  # when the cycle published it
    every: pd.Timedelta  # the service's cycle period
    late_by: pd.Timedelta  # how far past due the next cycle is (zero when on time)
    levels: dict[str, str]  # the service's levels (its hysteresis, not this browser session's)
    last_sample: dict[str, pd.Timestamp]  # server -> its newest sample
    stale: list[str]  # servers whose newest sample is well behind the fleet's
    model_error: str | None
    data_arrived: pd.Timestamp | None = None  # when the service last stored new samples (None: not known)


@dataclass
class FleetView:
    """One fleet's assessment as the pages draw it: the ``fleet.Assessment`` and the history window
    it was made from (the charts' past), with the live service's freshness when it is a snapshot."""

    dataset: Path
    history: pd.DataFrame  # the encoder window up to ``as_of``: every server, every column
    assessment: fleet.Assessment
    live: LiveStatus | None = None  # set when the view is a live service's snapshot

    # the assessment's parts, by the names the pages read
    model_id = property(lambda self: self.assessment.model_id)
    as_of = property(lambda self: self.assessment.as_of)
    step = property(lambda self: self.assessment.step)
    horizon = property(lambda self: self.assessment.horizon)
    forecast = property(lambda self: self.assessment.forecast)
    per_metric = property(lambda self: self.assessment.per_metric)
    profiles = property(lambda self: self.assessment.profiles)
    abnormal = property(lambda self: self.assessment.abnormal)
    deviations = property(lambda self: self.assessment.deviations)
    metrics = property(lambda self: self.assessment.metrics)

    @property
    def thresholds(self) -> dict[str, schema.Threshold]:
        """The model's thresholds per metric (``server_thresholds`` gives one server's)."""
        return self.assessment.thresholds.by_metric


def find_datasets(root: str | Path) -> list[Path]:
    """Datasets under ``root``/demo_data and ``root``/data, demo fleet first."""
    root = Path(root)
    found = []
    for folder in (root / "demo_data", root / "data"):
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_dir() and store.looks_like_dataset(p))
    return sorted(found, key=lambda p: (p.name != "fleet", p.parent.name != "demo_data", str(p)))


def data_span(dataset: str | Path) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    """First and last timestamp of a dataset and its step, from the manifest alone."""
    return span_of(dataset, store.read_manifest(dataset))


def span_of(dataset: str | Path, manifest: dict) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    """First and last timestamp and the step of a dataset whose manifest is read already."""
    if not manifest.get("rows"):
        raise DatasetError(f"{dataset} holds no rows; generate data with "
                           "`python -m argus_core generate --output DIR` or `make demo-data`")
    return (pd.Timestamp(manifest["start"]), pd.Timestamp(manifest["end"]),
            pd.Timedelta(manifest.get("step", schema.DEFAULT_STEP)))


@dataclass(frozen=True)
class ViewSource:
    """What one fleet view is made of, resolved once: the dataset and its manifest, the model
    directory (the champion resolved here, once) and what identifies their current state."""

    dataset: Path
    manifest: dict
    model_dir: Path
    model_id: str

    @property
    def key(self) -> tuple:
        """Changes when new rows arrive, the champion changes or the weights are rewritten."""
        weights = self.model_dir / "model.safetensors"
        return (str(self.dataset), str(self.model_dir), self.manifest.get("end"), self.manifest.get("rows"),
                weights.stat().st_mtime_ns if weights.exists() else 0)


def view_source(dataset: str | Path, model_root: str | Path, model_id: str | None = None) -> ViewSource:
    """Read the manifest and resolve the model (the champion by default) once for a view."""
    dataset = Path(dataset)
    manifest = store.read_manifest(dataset)
    resolved = resolve_model_id(model_root, model_id)
    return ViewSource(dataset, manifest, Path(model_root) / resolved, resolved)


def fleet_view(dataset: str | Path, model_root: str | Path, model_id: str | None = None,
               as_of: pd.Timestamp | None = None) -> FleetView:
    """Forecast and score the fleet of ``dataset`` as of ``as_of`` (default: its last timestamp)."""
    return view_of(view_source(dataset, model_root, model_id), as_of)


def view_of(source: ViewSource, as_of: pd.Timestamp | None = None) -> FleetView:
    """The fleet view of a resolved source. Not cached here: callers that show it again (the
    pages, ``ui.data``) keep one cache keyed on ``source.key``."""
    start, end, step = span_of(source.dataset, source.manifest)
    forecaster = Forecaster.load(source.model_dir)
    if forecaster.step != step:
        raise ArgusError(f"model {forecaster.model_id} works in steps of {forecaster.spec.step}, the dataset in "
                         f"{step}; train a model on this dataset")
    as_of = end if as_of is None else min(max(pd.Timestamp(as_of), start), end)
    history = store.read_recent(source.dataset, forecaster.history_steps + store.LATE_SLACK, as_of, source.manifest)
    if history.empty:
        raise DatasetError(f"{source.dataset} has no data in the 24 h before {as_of:%Y-%m-%d %H:%M}")
    assessment = fleet.assess(history, forecaster, rules=live_state.rules_for(source.dataset),
                              judge=anomaly.window_judge(source.model_dir, source.dataset, source.manifest))
    return FleetView(source.dataset, history, assessment)


def server_thresholds(view: FleetView, server: str) -> dict[str, schema.Threshold]:
    """The thresholds that apply to one server: the model's, or its profile's or own override."""
    return view.assessment.thresholds.for_server(server)


def ranking(view: FleetView, previous_levels: dict[str, str] | None = None) -> pd.DataFrame:
    """The assessment's ranking (``fleet.rank``) with ``previous_levels`` as the hysteresis memory."""
    return view.assessment.ranked(previous_levels)


def risk_table(view: FleetView, shown: pd.DataFrame) -> pd.DataFrame:
    """The Critical servers table: what an SRE reads first on the left (level, the two
    probabilities as whole percents, when the breach comes), the rest after; no "None" (a missing
    value is an empty cell or says what it means)."""
    table = pd.DataFrame({
        schema.SERVER: shown[schema.SERVER].astype(str), "level": shown["level"],
        "p_critical": (100 * shown["p_critical"]).round(0), "p_warning": (100 * shown["p_warning"]).round(0),
        "breach_p50": shown["hours_to_breach_p50"].map(_in_hours), "breach_p90": shown["hours_to_breach_p90"].map(
            _in_hours),
        "now": shown["now"].fillna("").astype(str), "driver": shown["driver"].astype(str),
    })
    table["trend"] = table[schema.SERVER].map(sparklines(view, shown))
    table["abnormal"] = shown["abnormal"].fillna(False).astype(bool)
    table["abnormal_metrics"] = shown["abnormal_metrics"].fillna("").astype(str)
    table["profile"] = shown[schema.PROFILE].map(display_name)
    table["score"] = shown["score"].round(0)
    table["drivers"] = shown["drivers"].fillna("").astype(str)
    return table.reset_index(drop=True)


def _in_hours(hours) -> str:
    return "none in the horizon" if hours is None or pd.isna(hours) else f"in {float(hours):.1f} h"


def abnormal_text(ranked: pd.DataFrame, shown: int = 5, detector: bool = True) -> str:
    """One line for the overview: how many servers are abnormal now, and which metrics are off;
    ``detector`` False when the model has none this Argus can read (then nothing is known)."""
    if not detector:
        return ("**Abnormal now: not known** (this model has no anomaly detector beside it; the documentation's "
                "Abnormal now page says how to fit one)")
    if "abnormal" not in ranked or not ranked["abnormal"].any():
        return "**Abnormal now: none** (every server is near its nominal behaviour)"
    off = ranked[ranked["abnormal"]]
    pairs = list(zip(off[schema.SERVER], off["abnormal_metrics"], strict=True))[:shown]
    names = ", ".join(f"{server} ({metrics.split(', ')[0]})" for server, metrics in pairs)
    more = f" and {len(off) - shown} more" if len(off) > shown else ""
    return f"**Abnormal now: {len(off)}** ◆ {names}{more}"


def profile_aggregates(view: FleetView, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean of ``metric`` per profile: history (profile, timestamp, value) and forecast (profile,
    timestamp, q10, q50, q90). The band is the mean of the servers' quantiles: the typical
    server's band, not a quantile of the fleet mean."""
    hist = view.history[[schema.SERVER, schema.TIMESTAMP]].copy()
    hist["value"] = schema.metric_values(view.history, metric)
    hist[schema.PROFILE] = hist[schema.SERVER].map(view.profiles)
    past = hist.groupby([schema.PROFILE, schema.TIMESTAMP], observed=True)["value"].mean().reset_index()
    q = view.forecast.quantiles
    q = q[q["metric"] == metric].copy()
    q[schema.PROFILE] = q[schema.SERVER].map(view.profiles)
    future = q.groupby([schema.PROFILE, schema.TIMESTAMP], observed=True)[list(schema.QUANTILE_COLUMNS)].mean()
    return past, future.reset_index()


def sparklines(view: FleetView, ranked: pd.DataFrame, hours: int = SPARK_HOURS) -> dict[str, list[float]]:
    """server -> the driving metric's last ``hours`` of history then its p50 forecast, every
    third step so a table cell stays legible. One (servers x time) table per driving metric."""
    since = view.as_of - pd.Timedelta(hours=hours)
    recent = view.history[view.history[schema.TIMESTAMP] > since]
    q = view.forecast.quantiles
    out: dict[str, list[float]] = {}
    for metric, servers in ranked.groupby("driver", observed=True)[schema.SERVER]:
        past = recent[recent[schema.SERVER].isin(servers)]
        past = pd.DataFrame({schema.SERVER: past[schema.SERVER].astype(str), schema.TIMESTAMP: past[schema.TIMESTAMP],
                             "value": schema.metric_values(past, metric)})
        future = q[(q["metric"] == metric) & q[schema.SERVER].isin(servers)]
        future = pd.DataFrame({schema.SERVER: future[schema.SERVER].astype(str),
                               schema.TIMESTAMP: future[schema.TIMESTAMP], "value": future["q50"]})
        wide = pd.concat([past, future]).pivot_table(index=schema.SERVER, columns=schema.TIMESTAMP, values="value",
                                                     aggfunc="first", observed=True)
        values = wide.to_numpy(np.float64)
        for name, row in zip(wide.index, values, strict=True):
            out[name] = [round(float(v), 2) for v in row[~np.isnan(row)][::3]]
    return {server: out.get(str(server), []) for server in ranked[schema.SERVER]}


@dataclass
class ServerDetail:
    server: str
    profile: str
    unseen: bool  # never seen in training: forecast from its profile and its own recent window
    history: pd.DataFrame  # timestamp + every forecast metric
    quantiles: pd.DataFrame  # metric, timestamp, q10, q50, q90
    risk: pd.DataFrame  # metric_risk rows of this server
    importance: pd.DataFrame  # variable, importance, largest first
    skipped_reason: str | None = None
    deviation: pd.DataFrame | None = None  # timestamp, deviation, tau_fast, tau_persist, abnormal (None: no detector)
    served_by: dict[str, str] = field(default_factory=dict)  # metric -> what forecasts it (model.serving)
    own_model: str | None = None  # the server's own fine-tuned model (train --server), when it forecasts it
    # the dataset's labelled anomaly windows of this server in the drawn span: metric (None: all), start, end
    labelled: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["metric", "start", "end"]))


def server_detail(view: FleetView, server: str) -> ServerDetail:
    """Everything the server detail page draws for one server; ArgusError for an unknown name."""
    if server not in view.profiles:
        raise ArgusError(f"no server named {server!r} in {view.dataset.name} before {view.as_of:%Y-%m-%d %H:%M}")
    hist = view.history[view.history[schema.SERVER] == server]
    columns = {schema.TIMESTAMP: hist[schema.TIMESTAMP].to_numpy()}
    for metric in view.metrics:
        columns[metric] = schema.metric_values(hist, metric)
    q = view.forecast.quantiles
    imp = view.forecast.importance
    imp = imp[imp[schema.SERVER] == server].sort_values("importance", ascending=False)
    return ServerDetail(
        server=server,
        profile=view.profiles[server],
        unseen=server in view.forecast.unseen_servers,
        history=pd.DataFrame(columns),
        quantiles=q[q[schema.SERVER] == server].drop(columns=[schema.SERVER]),
        risk=view.per_metric[view.per_metric[schema.SERVER] == server].set_index("metric"),
        importance=imp[["variable", "importance"]].reset_index(drop=True),
        skipped_reason=view.forecast.skipped.get(server),
        deviation=None if view.deviations is None else view.deviations[view.deviations[schema.SERVER] == server]
        [[schema.TIMESTAMP, "deviation", "tau_fast", "tau_persist", "abnormal"]].reset_index(drop=True),
        served_by=served_labels(view.forecast.served_by, server, q[q[schema.SERVER] == server]["metric"].unique()),
        own_model=view.forecast.forecast_by.get(server),
        labelled=labelled_windows(view, server),
    )


def labelled_windows(view: FleetView, server: str) -> pd.DataFrame:
    """The dataset's labelled anomaly windows of ``server`` (``import --labels``) that overlap what
    server detail draws, the history window and the horizon, clipped to it: metric (None for a
    window of the whole server), start, end."""
    try:
        stored = store.read_manifest(view.dataset).get("labels") or []
    except (ArgusError, OSError):  # a view of data without a readable manifest: nothing to shade
        stored = []
    frame = pd.DataFrame([w for w in stored if w.get(schema.SERVER) == server], columns=["metric", "start", "end"])
    if frame.empty or view.history.empty:
        return frame
    first = view.history[schema.TIMESTAMP].min()
    last = view.as_of + view.step * view.horizon
    start, end = pd.to_datetime(frame["start"], utc=True), pd.to_datetime(frame["end"], utc=True)
    keep = (end >= first) & (start <= last)
    return pd.DataFrame({"metric": frame["metric"][keep], "start": start[keep].clip(lower=first),
                         "end": end[keep].clip(upper=last)}).reset_index(drop=True)

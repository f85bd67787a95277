"""Plotly figures from the frames of ``argus_core.views.dashboard`` and ``argus_core.views.replay``.

No Streamlit here: a figure can be saved or shown from a notebook. Plotly renders a subset of
HTML in text and hover labels, so every server name goes through ``label`` first.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from argus_core.data import schema
from argus_core.data.profiles import display_name
from argus_core.fleet import risk

LEVEL_COLORS = {"healthy": "#2e7d32", "watch": "#f9a825", "warning": "#ef6c00", "critical": "#c62828"}
PROFILE_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WARNING_COLOR, CRITICAL_COLOR = LEVEL_COLORS["warning"], LEVEL_COLORS["critical"]
LABELLED_COLOR = "rgba(96,125,139,0.18)"  # a labelled anomaly window: grey, under the lines
# risk score 0..100 -> colour, with the bands of the levels (risk.ENTER) as the breaks
_SCORE_SCALE = [
    [0.0, LEVEL_COLORS["healthy"]], [risk.ENTER["watch"] / 100, "#9ccc65"],
    [risk.ENTER["watch"] / 100, LEVEL_COLORS["watch"]], [risk.ENTER["warning"] / 100, "#ffb300"],
    [risk.ENTER["warning"] / 100, LEVEL_COLORS["warning"]], [risk.ENTER["critical"] / 100, "#e65100"],
    [risk.ENTER["critical"] / 100, LEVEL_COLORS["critical"]], [1.0, "#8e0000"],
]


NOW_COLOR = "#616161"


def label(text: object) -> str:
    """``text`` for a plotly label: <, > and & escaped (plotly reads a subset of HTML), quotes left
    alone (plotly shows ``&quot;`` literally, in heat-map cells for one)."""
    return html.escape(str(text), quote=False)


def unit_of(metric: str) -> str:
    """The unit a metric is shown in ("" when Argus does not know it: an imported metric)."""
    name = str(metric)
    if name.endswith("_pct"):
        return "%"
    if name.endswith("_mb_s"):
        return "MB/s"
    if name.endswith("close_wait"):
        return "sockets"
    if name == "load_average":
        return "runnable processes"
    if name.endswith("_days"):
        return "days"
    return ""


def titled(metric: str) -> str:
    """A metric's axis or panel title: its name and unit, ``mem_used_pct (%)``."""
    unit = unit_of(metric)
    return label(metric) + (f" ({unit})" if unit else "")


def _now_of(quantiles: pd.DataFrame) -> pd.Timestamp | None:
    """"Now": one step before the forecast's first time."""
    if not len(quantiles):
        return None
    stamps = pd.Series(sorted(quantiles[schema.TIMESTAMP].unique()))
    step = stamps.diff().min() if len(stamps) > 1 else pd.Timedelta(0)
    return stamps.iloc[0] - (step if pd.notna(step) else pd.Timedelta(0))


def _layout(fig: go.Figure, title: str | None = None, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
                      hovermode="x unified")
    return fig


def profile_label(profile: object) -> str:
    """A profile as people read it, safe for a plotly label."""
    return label(display_name(profile))


def heatmap_cells(ranked: pd.DataFrame) -> tuple[list[str], list[list[pd.Series]]]:
    """The heat map's rows (profiles, sorted) and, per row, its servers riskiest first: what cell
    (row, column) shows, for drawing it and for opening the server a click lands on."""
    rows = sorted(ranked[schema.PROFILE].astype(str).unique(), key=display_name)
    cells = []
    for profile in rows:
        group = ranked[ranked[schema.PROFILE].astype(str) == profile].sort_values("score", ascending=False,
                                                                                kind="stable")
        cells.append([row for _, row in group.iterrows()])
    return rows, cells


def heatmap_server(ranked: pd.DataFrame, point: dict) -> str | None:
    """The server under a clicked heat-map point (plotly's x is the column, y the profile row)."""
    rows, cells = heatmap_cells(ranked)
    try:
        r, c = [profile_label(p) for p in rows].index(str(point["y"])), int(point["x"])
    except (KeyError, ValueError, TypeError):
        return None
    return str(cells[r][c][schema.SERVER]) if 0 <= c < len(cells[r]) else None


def fleet_heatmap(ranked: pd.DataFrame) -> go.Figure:
    """One row per profile, one cell per server (riskiest on the left), coloured by risk score.
    Names are written in the cells while they fit; the ◆ of a server abnormal now always is."""
    rows, cells = heatmap_cells(ranked)
    width = max((len(c) for c in cells), default=1) or 1
    z = np.full((len(rows), width), np.nan)
    names = np.full((len(rows), width), "", dtype=object)
    hover = np.full((len(rows), width), "", dtype=object)
    wide = width > 12
    for r, group in enumerate(cells):
        for c, row in enumerate(group):
            z[r, c] = row["score"]
            abnormal = bool(row.get("abnormal", False))
            mark = "◆" if abnormal else ""  # the mark: abnormal now
            names[r, c] = mark if wide else label(row[schema.SERVER]) + (f" {mark}" if mark else "")
            hover[r, c] = (f"{label(row[schema.SERVER])}<br>{row['level']} (score {row['score']:.0f})<br>driver "
                           f"{row['driver']}<br>P(critical) {row['p_critical']:.0%}"
                           + (f"<br>abnormal now: {label(row.get('abnormal_metrics', ''))}" if abnormal else "")
                           + "<br>click to open")
    fig = go.Figure(go.Heatmap(
        z=z, y=[profile_label(p) for p in rows], customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        zmin=0, zmax=100, colorscale=_SCORE_SCALE, xgap=2, ygap=2, colorbar=dict(title="risk", thickness=12),
        text=names, texttemplate="%{text}", textfont=dict(size=12 if wide else 9),
    ))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(autorange="reversed")
    _layout(fig, height=max(220, 42 * len(rows) + 40))
    fig.update_layout(hovermode="closest", clickmode="event+select")
    return fig


def profile_bands(past: pd.DataFrame, future: pd.DataFrame, metric: str, threshold=None) -> go.Figure:
    """Per profile: mean history, then the mean p10-p90 band and p50 line."""
    fig = go.Figure()
    for i, profile in enumerate(sorted(past[schema.PROFILE].unique())):
        color = PROFILE_COLORS[i % len(PROFILE_COLORS)]
        p = past[past[schema.PROFILE] == profile]
        f = future[future[schema.PROFILE] == profile]
        fig.add_scatter(x=p[schema.TIMESTAMP], y=p["value"], name=profile_label(profile), legendgroup=profile,
                        line=dict(color=color, width=1.5))
        if len(f):
            fig.add_scatter(x=f[schema.TIMESTAMP], y=f["q90"], legendgroup=profile, showlegend=False,
                            line=dict(width=0), hoverinfo="skip")
            fig.add_scatter(x=f[schema.TIMESTAMP], y=f["q10"], legendgroup=profile, showlegend=False,
                            fill="tonexty", fillcolor=_alpha(color, 0.18), line=dict(width=0), hoverinfo="skip")
            fig.add_scatter(x=f[schema.TIMESTAMP], y=f["q50"], legendgroup=profile, showlegend=False,
                            name=f"{profile} p50", line=dict(color=color, width=1.5, dash="dot"))
    if len(future):
        now = _now_of(future)
        _vline(fig, now, "now", NOW_COLOR)
    _thresholds(fig, threshold)
    fig.update_yaxes(title=titled(metric))
    return _layout(fig, height=340)


def forecast_chart(history: pd.DataFrame, quantiles: pd.DataFrame, metric: str, threshold=None,
                   breach_p50=None, breach_p90=None, title: str | None = None, height: int = 300) -> go.Figure:
    """Recent history, the p10-p90 band, the p50 line, thresholds and the first predicted breach."""
    fig = go.Figure(_forecast_traces(history[schema.TIMESTAMP], history["value"], quantiles,
                                     (breach_p50, breach_p90), legend=True))
    now = _now_of(quantiles)
    if now is not None:
        _vline(fig, now, "now", NOW_COLOR)
    _thresholds(fig, threshold)
    fig.update_yaxes(title=titled(metric))
    return _layout(fig, title, height)


def metric_grid(history: pd.DataFrame, quantiles: pd.DataFrame, risk_rows: pd.DataFrame, metrics: list[str],
                thresholds: dict, labelled: pd.DataFrame | None = None) -> go.Figure:
    """One panel per metric, two per row, sharing the time axis: history, p10-p90 band, p50,
    thresholds, the first p50/p90 breach and, shaded grey, labelled anomaly windows (``labelled``:
    metric, None for every metric, start, end). One figure rather than one per metric: the browser
    draws a single plot. Traces and threshold lines are added in one batch each (plotly's
    per-panel ``add_hline`` costs ~50 ms a call)."""
    from plotly.subplots import make_subplots

    rows = max(1, -(-len(metrics) // 2))
    fig = make_subplots(rows=rows, cols=2, shared_xaxes=True, subplot_titles=[titled(m) for m in metrics],
                        vertical_spacing=0.06)
    traces, shapes = [], []
    now = _now_of(quantiles)
    for i, metric in enumerate(metrics):
        axis = "" if i == 0 else str(i + 1)  # make_subplots numbers axes row by row
        breaches = tuple(risk_rows.loc[metric, c] for c in ("breach_p50", "breach_p90")) \
            if metric in risk_rows.index else (None, None)
        traces += _forecast_traces(history[schema.TIMESTAMP], history[metric],
                                   quantiles[quantiles["metric"] == metric], breaches, legend=i == 0,
                                   xaxis=f"x{axis}", yaxis=f"y{axis}")
        limit = thresholds.get(metric)
        if limit is not None:
            for level, color, dash in ((limit.warning, WARNING_COLOR, "dot"), (limit.critical, CRITICAL_COLOR, "dash")):
                shapes.append(dict(type="line", xref=f"x{axis} domain", x0=0, x1=1, yref=f"y{axis}", y0=level,
                                   y1=level, line=dict(color=color, dash=dash, width=1)))
        if now is not None:  # where the history ends and the forecast begins, in every panel
            shapes.append(dict(type="line", xref=f"x{axis}", x0=now, x1=now, yref=f"y{axis} domain", y0=0, y1=1,
                               line=dict(color=NOW_COLOR, dash="dot", width=1)))
        if labelled is not None and len(labelled):
            mine = labelled[labelled["metric"].isna() | (labelled["metric"] == metric)]
            shapes += [dict(type="rect", xref=f"x{axis}", x0=w.start, x1=w.end, yref=f"y{axis} domain", y0=0, y1=1,
                            fillcolor=LABELLED_COLOR, line=dict(width=0), layer="below")
                       for w in mine.itertuples(index=False)]
    fig.add_traces(traces)
    fig.update_layout(shapes=shapes)
    _layout(fig, height=230 * rows + 60)
    return fig


def _forecast_traces(times, values, q: pd.DataFrame, breaches: tuple, legend: bool, **axes) -> list[go.Scatter]:
    """Actual line, p10-p90 band, p50 line, and an x at the first p50 and p90 critical breach."""
    traces = [go.Scatter(x=times, y=values, name="actual", legendgroup="actual", showlegend=legend,
                         line=dict(color="#37474f", width=1.3), **axes)]
    if len(q):
        traces += [
            go.Scatter(x=q[schema.TIMESTAMP], y=q["q90"], name="p90", legendgroup="band", showlegend=False,
                       line=dict(width=0), **axes),
            go.Scatter(x=q[schema.TIMESTAMP], y=q["q10"], name="p10-p90", legendgroup="band", showlegend=legend,
                       fill="tonexty", fillcolor="rgba(30,136,229,0.22)", line=dict(width=0), **axes),
            go.Scatter(x=q[schema.TIMESTAMP], y=q["q50"], name="p50", legendgroup="p50", showlegend=legend,
                       line=dict(color="#1e88e5", dash="dash", width=1.3), **axes),
        ]
    for when, label, column in zip(breaches, ("breach at p50", "breach at p90"), ("q50", "q90"), strict=True):
        hit = q[q[schema.TIMESTAMP] == when] if when is not None and not pd.isna(when) else q.iloc[:0]
        if len(hit):
            traces.append(go.Scatter(x=[when], y=[hit[column].iloc[0]], mode="markers", name=label,
                                     legendgroup=label, showlegend=legend,
                                     marker=dict(symbol="x", size=10, color=CRITICAL_COLOR), **axes))
    return traces


def deviation_chart(deviation: pd.DataFrame) -> go.Figure:
    """A server's deviation from nominal behaviour over time, both thresholds, abnormal periods shaded."""
    fig = go.Figure()
    fig.add_scatter(x=deviation[schema.TIMESTAMP], y=deviation["deviation"], name="deviation",
                    line=dict(color="#455a64", width=1.5))
    fig.add_scatter(x=deviation[schema.TIMESTAMP], y=deviation["tau_fast"], name="fast threshold (p95)",
                    line=dict(color=WARNING_COLOR, width=1, dash="dot"))
    fig.add_scatter(x=deviation[schema.TIMESTAMP], y=deviation["tau_persist"], name="persistent threshold (p98)",
                    line=dict(color=CRITICAL_COLOR, width=1, dash="dash"))
    flags = deviation["abnormal"].to_numpy(dtype=bool)
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    stamps = deviation[schema.TIMESTAMP].to_numpy()
    for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True):
        fig.add_vrect(x0=stamps[start], x1=stamps[end], fillcolor=_alpha(CRITICAL_COLOR, 0.12), line_width=0,
                      annotation_text="abnormal" if start == np.flatnonzero(edges == 1)[0] else None)
    return _layout(fig, height=260)


def importance_bar(importance: pd.DataFrame, top: int = 10) -> go.Figure:
    """The TFT's encoder variable weights, largest on top."""
    data = importance.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=data["importance"], y=data["variable"], orientation="h", marker_color="#5c6bc0",
                           hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_xaxes(tickformat=".0%", title="weight in the encoder")
    _layout(fig, height=max(200, 24 * len(data) + 60))
    fig.update_layout(hovermode="closest")
    return fig


def demo_chart(tick, scenario, first_predicted: pd.Timestamp | None) -> go.Figure:
    """The incident server's metric: actuals so far, the live forecast, the threshold, and the
    moments "model predicts the breach" and "breach" with the lead time between them."""
    fig = forecast_chart(tick.actual, tick.band, scenario.metric,
                         threshold=(None, scenario.threshold), height=380,
                         title=f"{label(scenario.server)}: {scenario.metric}")
    fig.update_xaxes(range=[scenario.start - pd.Timedelta(hours=6), scenario.end])
    fig.update_yaxes(range=[0, 105] if scenario.metric.endswith("_pct") else None)
    # the three labels at three heights: "now", the prediction and the breach are often minutes apart
    if first_predicted is not None:
        _vline(fig, first_predicted, "model predicts the breach", "#1e88e5", height=0.92)
    if tick.now >= scenario.breach_time:
        _vline(fig, scenario.breach_time, "breach", CRITICAL_COLOR, height=0.84)
        if first_predicted is not None and first_predicted <= scenario.breach_time:
            lead = (scenario.breach_time - first_predicted) / pd.Timedelta("1min")
            fig.add_annotation(x=scenario.breach_time, y=scenario.threshold, text=f"{lead:.0f} min of warning",
                               showarrow=True, ax=-90, ay=-40, font=dict(size=14, color="#1e88e5"))
    return fig


def _thresholds(fig: go.Figure, threshold) -> None:
    if threshold is None:
        return
    warning, critical = (threshold.warning, threshold.critical) if hasattr(threshold, "critical") else threshold
    if warning is not None:
        fig.add_hline(y=warning, line=dict(color=WARNING_COLOR, dash="dot", width=1),
                      annotation_text="warning", annotation_position="top left")
    fig.add_hline(y=critical, line=dict(color=CRITICAL_COLOR, dash="dash", width=1),
                  annotation_text="critical", annotation_position="top left")


def _vline(fig: go.Figure, when: pd.Timestamp, label: str, color: str, height: float = 1.0) -> None:
    # add_vline's annotation does arithmetic on the x value, which fails for timestamps: a shape + text instead
    fig.add_shape(type="line", x0=when, x1=when, y0=0, y1=1, yref="paper", line=dict(color=color, dash="dot"))
    fig.add_annotation(x=when, y=height, yref="paper", text=label, showarrow=False,
                       yanchor="bottom" if height >= 1 else "middle", xanchor="left" if height < 1 else "center",
                       bgcolor="rgba(255,255,255,0.8)" if height < 1 else None, font=dict(color=color, size=11))


def _alpha(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def training_curves(metrics: pd.DataFrame) -> go.Figure:
    """One run's loss curves against the optimiser step: train loss per logged step (thin),
    train and validation loss per epoch (markers)."""
    fig = go.Figure()
    for name, label, style in (("train_loss_step", "train (step)", dict(color="#90a4ae", width=1)),
                               ("train_loss", "train (epoch)", dict(color="#37474f")),
                               ("val_loss", "validation", dict(color="#1e88e5", width=2.5))):
        rows = metrics[metrics["name"] == name]
        if len(rows):
            fig.add_scatter(x=rows["step"], y=rows["value"], name=label, line=style,
                            mode="lines" if name == "train_loss_step" else "lines+markers")
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="quantile loss")
    return _layout(fig, height=300)


def compare_curves(metrics: pd.DataFrame, labels: dict[int, str], name: str = "val_loss") -> go.Figure:
    """``name`` per epoch for several runs, overlaid."""
    fig = go.Figure()
    for i, (run, group) in enumerate(metrics[metrics["name"] == name].groupby("run")):
        fig.add_scatter(x=group["epoch"] + 1, y=group["value"], name=label(labels.get(run, str(run))),
                        mode="lines+markers", line=dict(color=PROFILE_COLORS[i % len(PROFILE_COLORS)]))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title=name.replace("_", " "))
    return _layout(fig, height=300)


MODEL_COLORS = {"tft": "#1e88e5", "naive": "#757575", "seasonal_naive": "#8d6e63", "autoarima": "#43a047",
                "autoets": "#43a047"}


def calibration_chart(calibration: dict[str, dict[str, float]]) -> go.Figure:
    """Nominal quantile against the share of actuals at or below it, per model; the diagonal is
    perfect calibration (above it: forecasts too high; below: too low)."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(color="#bdbdbd", dash="dot"))
    for model, shares in calibration.items():
        fig.add_scatter(x=[0.1, 0.5, 0.9], y=[shares["p10"], shares["p50"], shares["p90"]], mode="lines+markers",
                        name=label(model), line=dict(color=MODEL_COLORS.get(model, "#9c27b0")))
    fig.update_xaxes(title="nominal quantile", range=[0, 1])
    fig.update_yaxes(title="share of actuals below", range=[0, 1])
    return _layout(fig, height=340)


def backtest_window(window: pd.DataFrame, history: pd.DataFrame | None = None) -> go.Figure:
    """One backtest origin: the actuals, each model's p50, and the TFT's p10-p90 band.
    ``window``: rows of one (server, metric, origin) from a backtest's forecasts."""
    fig = go.Figure()
    tft = window[window["model"] == "tft"].sort_values("timestamp")
    if history is not None and len(history):
        fig.add_scatter(x=history["timestamp"], y=history["value"], mode="lines", name="before the origin",
                        line=dict(color="#424242", width=1))
    if len(tft):
        fig.add_scatter(x=tft["timestamp"], y=tft["q90"], mode="lines", line=dict(width=0), showlegend=False,
                        hoverinfo="skip")
        fig.add_scatter(x=tft["timestamp"], y=tft["q10"], mode="lines", line=dict(width=0), fill="tonexty",
                        fillcolor="rgba(30,136,229,0.2)", name="tft p10-p90")
    for model, rows in window.groupby("model", sort=False):
        rows = rows.sort_values("timestamp")
        fig.add_scatter(x=rows["timestamp"], y=rows["q50"], mode="lines", name=f"{label(model)} p50",
                        line=dict(color=MODEL_COLORS.get(model, "#9c27b0"), width=2.5 if model == "tft" else 1.5,
                                  dash=None if model == "tft" else "dash"))
    actual = window.drop_duplicates("timestamp").sort_values("timestamp")
    fig.add_scatter(x=actual["timestamp"], y=actual["actual"], mode="lines", name="actual",
                    line=dict(color="#000000", width=2))
    origin = _now_of(window)
    if origin is not None:
        _vline(fig, origin, "origin (the forecast's now)", NOW_COLOR)
    if "metric" in window.columns and len(window):
        fig.update_yaxes(title=titled(window["metric"].iloc[0]))
    return _layout(fig, height=360)

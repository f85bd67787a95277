"""What the model quality page shows, computed without Streamlit: the scoreboard of a saved
backtest, its breakdowns, the labelled-anomaly rows, the series it scored, and the champion
against a candidate."""

from __future__ import annotations

import pandas as pd

from argus_core.model import serving_defaults, serving_rule, serving_table  # noqa: F401 - what the page shows

SCORE_NAMES = {"geo_mean_relative": "vs seasonal naive", "mean_mase": "mean MASE",
               "median_mase": "median MASE", "share_best": "share best", "pinball_q10": "pinball p10",
               "pinball_q50": "pinball p50", "pinball_q90": "pinball p90", "coverage": "p10-p90 coverage"}
LOWER_IS_BETTER = ["vs seasonal naive", "mean MASE", "median MASE", "pinball p10", "pinball p50",
                   "pinball p90", "coverage gap"]
CALIBRATED = 0.8  # the share of actuals a p10-p90 band should hold
BREAKDOWNS = ("metric", "profile", "series")


def scoreboard(summary: dict) -> pd.DataFrame:
    """One row per method (the TFT and each baseline): MASE, pinball losses, coverage and its gap."""
    overall = pd.DataFrame(summary["overall"]).T
    overall = overall.reindex(columns=[*SCORE_NAMES, "series"]).astype(float)  # older backtests lack some
    overall["coverage gap"] = (overall["coverage"] - CALIBRATED).abs()
    return overall.astype({"series": int}).rename(columns=SCORE_NAMES)


def board(summary: dict) -> pd.DataFrame:
    """The scoreboard as it fits a page: one row per figure, one column per method (a handful of
    methods fit across any screen; a dozen figures did not)."""
    return scoreboard(summary).T


def best_cells(frame: pd.DataFrame, lower: list[str] | None = None, higher: tuple[str, ...] = ("share best",),
               axis: str = "rows") -> pd.DataFrame:
    """Where the best value of each row (``axis="rows"``: the row's methods) stands, as booleans: the
    lowest for the rows in ``lower`` (every row when None), the highest for ``higher``; a row whose
    best is shared by every method (every MASE 0 on a flat series, say) has no best."""
    marks = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    for name, row in frame.iterrows():
        values = pd.to_numeric(row, errors="coerce")
        if name in higher:
            best = values.max()
        elif lower is None or name in lower:
            best = values.min()
        else:
            continue
        hit = values == best
        if values.notna().sum() > 1 and hit.any() and not hit[values.notna()].all():
            marks.loc[name] = hit.to_numpy()
    return marks


def breakdown(summary: dict, by: str) -> pd.DataFrame:
    """Mean MASE per ``by`` (metric, profile or series) and method."""
    if by not in BREAKDOWNS:
        raise ValueError(f"breakdown by {by!r}: use one of {', '.join(BREAKDOWNS)}")
    if by == "series":
        return pd.DataFrame(summary["per_series"]).pivot_table(index=["server_name", "metric"], columns="model",
                                                               values="mase")
    return pd.DataFrame(summary[f"per_{by}"]).pivot_table(index=by, columns="model", values="mase")


def anomaly_rows(summary: dict) -> pd.DataFrame:
    """Error, coverage and pinball loss inside and outside the labelled anomaly windows (and a
    simulated dataset's incident windows, precursor to breach), per method, with the points and
    series each figure rests on (empty: no window)."""
    rows = [{"model": m, "where": w, "MASE-scaled error": v["mase"], "coverage": v["coverage"],
             "pinball": v.get("pinball"), "points": v["points"], "series": v.get("series")}
            for m, parts in (summary.get("anomaly_windows") or {}).items() for w, v in parts.items()]
    return pd.DataFrame(rows)


def continuity_rows(summary: dict) -> pd.DataFrame:
    """Per method, the first step's and the first hour's MASE-scaled error and each against naive's
    (the last value): about 1 when a forecast starts where the series is. Empty for a backtest
    saved before the board existed."""
    rows = [{"model": m, "first step": c["first_step"], "first hour": c["first_hour"],
             "first step / naive": c["first_step_vs_naive"], "first hour / naive": c["first_hour_vs_naive"],
             "points": c["points"]} for m, c in (summary.get("continuity") or {}).items()]
    return pd.DataFrame(rows)


def scored_series(forecasts: pd.DataFrame) -> list[tuple[str, str]]:
    """(server, metric) of every series in a backtest, sorted."""
    pairs = forecasts[["server_name", "metric"]].drop_duplicates().sort_values(["server_name", "metric"])
    return [(str(s), str(m)) for s, m in pairs.itertuples(index=False)]


def series_forecasts(forecasts: pd.DataFrame, server: str, metric: str) -> pd.DataFrame:
    return forecasts[(forecasts["server_name"] == server) & (forecasts["metric"] == metric)]


def caption(model_id: str, summary: dict) -> str:
    return (f"Backtest of {model_id} on {summary['dataset']}: {summary['series']} series, {summary['origins']} "
            f"origins, {summary['horizon']} steps ahead ({summary['evaluation']}), run {summary['created'][:16]} "
            "UTC. MASE: mean absolute error of p50 over the in-sample seasonal-naive error (below 1 beats "
            "'same time yesterday'); coverage: share of actuals inside p10-p90 (0.80 is calibrated).")




def outlier_note(summary: dict) -> str | None:
    """A line naming the series that pull the mean MASE up (None when none does)."""
    far = summary.get("outliers") or {}
    if not far.get("series"):
        return None
    named = ", ".join(f"{o['server_name']} {o['metric']} ({o['mase']:,.0f})" for o in far["series"])
    without = ", ".join(f"{m} {v:.3f}" for m, v in far["mean_without"].items())
    return (f"The mean MASE is pulled up by {far['count']} series far above the rest for every model: {named}. "
            f"Without them: {without}. The median and 'vs seasonal naive' are not moved by them.")

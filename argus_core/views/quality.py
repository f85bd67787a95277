"""What the model quality page shows, computed without Streamlit: the scoreboard of a saved
backtest, its breakdowns, the labelled-anomaly rows, the series it scored, and the champion
against a candidate."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SCORE_NAMES = {"geo_mean_relative": "MASE / seasonal naive (geo-mean)", "mean_mase": "mean MASE",
               "median_mase": "median MASE", "share_best": "share best", "pinball_q10": "pinball p10",
               "pinball_q50": "pinball p50", "pinball_q90": "pinball p90", "coverage": "p10-p90 coverage"}
LOWER_IS_BETTER = ["MASE / seasonal naive (geo-mean)", "mean MASE", "median MASE", "pinball p10", "pinball p50",
                   "pinball p90", "coverage gap"]
CALIBRATED = 0.8  # the share of actuals a p10-p90 band should hold
BREAKDOWNS = ("metric", "profile", "series")


def scoreboard(summary: dict) -> pd.DataFrame:
    """One row per method (the TFT and each baseline): MASE, pinball losses, coverage and its gap."""
    overall = pd.DataFrame(summary["overall"]).T
    overall = overall.reindex(columns=[*SCORE_NAMES, "series"]).astype(float)  # older backtests lack some
    overall["coverage gap"] = (overall["coverage"] - CALIBRATED).abs()
    return overall.astype({"series": int}).rename(columns=SCORE_NAMES)


def breakdown(summary: dict, by: str) -> pd.DataFrame:
    """Mean MASE per ``by`` (metric, profile or series) and method."""
    if by not in BREAKDOWNS:
        raise ValueError(f"breakdown by {by!r}: use one of {', '.join(BREAKDOWNS)}")
    if by == "series":
        return pd.DataFrame(summary["per_series"]).pivot_table(index=["server_name", "metric"], columns="model",
                                                               values="mase")
    return pd.DataFrame(summary[f"per_{by}"]).pivot_table(index=by, columns="model", values="mase")


def anomaly_rows(summary: dict) -> pd.DataFrame:
    """Error and coverage inside and outside the labelled anomaly windows, per method (empty: none)."""
    rows = [{"model": m, "where": w, "MASE-scaled error": v["mase"], "coverage": v["coverage"], "points": v["points"]}
            for m, parts in (summary.get("anomaly_windows") or {}).items() for w, v in parts.items()]
    return pd.DataFrame(rows)


def scored_series(forecasts: pd.DataFrame) -> list[tuple[str, str]]:
    """(server, metric) of every series in a backtest, sorted."""
    pairs = forecasts[["server_name", "metric"]].drop_duplicates().sort_values(["server_name", "metric"])
    return [(str(s), str(m)) for s, m in pairs.itertuples(index=False)]


def series_forecasts(forecasts: pd.DataFrame, server: str, metric: str) -> pd.DataFrame:
    return forecasts[(forecasts["server_name"] == server) & (forecasts["metric"] == metric)]


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per model: the TFT's mean and median MASE, coverage, series
    same_data: bool  # both backtests ran on the same dataset (otherwise their figures do not compare)
    candidate_better: bool  # the candidate's mean MASE is lower


def champion_against(champion: str, champion_summary: dict, candidate: str, candidate_summary: dict) -> Comparison:
    pair = {champion: champion_summary, candidate: candidate_summary}
    table = pd.DataFrame({f"{name} ({'champion' if name == champion else 'candidate'})": s["overall"]["tft"]
                          for name, s in pair.items()}).T[["mean_mase", "median_mase", "coverage", "series"]]
    better = candidate_summary["overall"]["tft"]["mean_mase"] < champion_summary["overall"]["tft"]["mean_mase"]
    return Comparison(table, champion_summary["dataset"] == candidate_summary["dataset"], better)


def caption(model_id: str, summary: dict) -> str:
    return (f"Backtest of {model_id} on {summary['dataset']}: {summary['series']} series, {summary['origins']} "
            f"origins, {summary['horizon']} steps ahead ({summary['evaluation']}), run {summary['created'][:16]} "
            "UTC. MASE: mean absolute error of p50 over the in-sample seasonal-naive error (below 1 beats "
            "'same time yesterday'); coverage: share of actuals inside p10-p90 (0.80 is calibrated).")


def serving_rule() -> str:
    """How a series' forecast is chosen, in words, from the constants that choose it."""
    from argus_core.model import serving

    return (f"another candidate replaces the TFT only where its validation error is at least {serving.MARGIN:.0%} "
            f"lower over at least {serving.MIN_ORIGINS} origins and it wins at {serving.MIN_WIN_SHARE:.0%} of them "
            f"or more; series with fewer than {serving.MIN_ORIGINS} origins each are decided together, on their "
            "errors relative to the TFT's")


def serving_defaults(model_dir) -> str:
    """What serves a series the model never saw (a server added after training), in words."""
    from argus_core.model import layout, serving

    table = serving.load(model_dir)
    defaults = (table.defaults or {}) if table is not None else {}
    options = serving.candidates()
    named = {target: options.get(name, serving.Choice(1.0)).label for target, name in defaults.items()}
    if not named or all(label == serving.LABELS[serving.TFT] for label in named.values()):
        return "A server training never saw is forecast by the TFT."
    if list(named) == [layout.VALUE]:
        return (f"A server training never saw is served as these series are, taken together: {named[layout.VALUE]} "
                "(once it has a day of history; the TFT until then).")
    return ("A server training never saw is served as each metric's series are, taken together (once it has a "
            "day of history; the TFT until then): " + ", ".join(f"{t} {label}" for t, label in named.items()) + ".")


def serving_table(model_dir) -> tuple[dict[str, int], pd.DataFrame] | None:
    """(count per candidate, one row per series: server, metric, served by, each candidate's
    validation error relative to the TFT's) of a model's serving table; None when it has none
    (the TFT serves every series)."""
    from argus_core.model import layout, serving

    table = serving.load(model_dir)
    if table is None or not table.series:
        return None
    options = serving.candidates()
    servers, metrics = layout.split_keys(list(table.series))
    rows = []
    for server, metric, entry in zip(servers, metrics, table.series.values(), strict=True):
        tft = entry["scores"].get(serving.TFT) or float("nan")
        row = {"server": server, "metric": metric,
               "served by": options.get(entry["by"], serving.Choice(1.0)).label
               + (f" (decided with {entry['pooled']} short series)" if entry.get("pooled") else "")}
        for name in (serving.SEASONAL, serving.NAIVE, "blend 0.50"):
            if name in entry["scores"]:
                row[f"{name} / TFT"] = entry["scores"][name] / tft if tft > 0 else float("nan")
        rows.append(row)
    return table.counts(), pd.DataFrame(rows)

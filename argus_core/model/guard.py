"""The guard every promotion goes through: a candidate becomes champion only when its backtest
beats the serving model's on the same windows.

Both models need a backtest (``backtest.json`` beside the model, written by ``backtest``) of
the same dataset, origins and horizon; a backtest copied from another model does not count.
Then the candidate must

- beat the champion on the served forecast's MASE relative to seasonal naive (geometric mean
  over series, the figure no single series can carry);
- keep its p10-p90 coverage in ``COVERAGE`` (a band that holds far more or far less than 80% of
  the actuals misleads the risk scores);
- make no metric much worse: each metric's served MASE at most ``WORSE`` times the champion's.

``judge`` says whether it passes, why not, and what gets worse (a pass can still make a metric
a little worse: the pages and the CLI show it and ask for a confirmation). Torch-free: it reads
the summaries' JSON only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from argus_core.model import registry

SUMMARY = "backtest.json"
COVERAGE = (0.70, 0.90)
WORSE = 1.10  # a metric's served MASE more than 10% above the champion's is "much worse"
SAME = ("dataset", "origins", "horizon", "every")  # what makes two backtests' windows the same


@dataclass
class Verdict:
    candidate: str
    champion: str | None
    ok: bool
    scored: bool  # both have backtests of the same windows
    reasons: list[str] = field(default_factory=list)  # why it does not pass
    worse: list[str] = field(default_factory=list)  # what gets worse (a little, or much)
    rows: list[dict] = field(default_factory=list)  # figure, champion, candidate
    dataset: str | None = None  # the data to backtest both on, when not scored

    def summary(self) -> str:
        if self.ok:
            return (f"{self.candidate} beats {self.champion} on the same backtest windows"
                    if self.champion else f"{self.candidate} has a backtest and there is no champion yet")
        return f"{self.candidate} may not replace {self.champion}: " + "; ".join(self.reasons)


def summary_of(models: str | Path, model_id: str) -> dict | None:
    """The model's own backtest summary, or None (none, unreadable, or copied from another model)."""
    try:
        summary = json.loads((Path(models) / model_id / SUMMARY).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and summary.get("model_id") == model_id else None


def _served(summary: dict) -> dict:
    overall = summary.get("overall", {})
    return overall.get("served") or overall.get("tft") or {}


def _per_metric(summary: dict) -> dict[str, float]:
    rows = summary.get("per_metric") or []
    chosen = "served" if any(r.get("model") == "served" for r in rows) else "tft"
    return {r["metric"]: float(r["mase"]) for r in rows if r.get("model") == chosen and r.get("mase") is not None}


def judge(models: str | Path, candidate: str, champion: str | None = None) -> Verdict:
    """Whether ``candidate`` may replace ``champion`` (default: the registry's)."""
    champion = champion if champion is not None else registry.champion_model_id(models)
    mine = summary_of(models, candidate)
    if mine is None:
        theirs = summary_of(models, champion) if champion else None
        return Verdict(candidate, champion, False, False,
                       [f"{candidate} has no backtest of its own: score it first"],
                       dataset=(theirs or {}).get("dataset"))
    if champion is None or champion == candidate:
        already = [] if champion is None else [f"{candidate} is the champion already"]
        return Verdict(candidate, champion, champion is None, True, already, dataset=mine.get("dataset"))
    theirs = summary_of(models, champion)
    if theirs is None or any(mine.get(k) != theirs.get(k) for k in SAME):
        differ = "has no backtest of its own" if theirs is None else "was backtested on other windows (" + ", ".join(
            f"{k} {theirs.get(k)} against {mine.get(k)}" for k in SAME if mine.get(k) != theirs.get(k)) + ")"
        return Verdict(candidate, champion, False, False,
                       [f"the champion {champion} {differ}: score both on the same data"], dataset=mine.get("dataset"))
    a, b = _served(theirs), _served(mine)
    rows = [{"figure": name, "champion": a.get(key), "candidate": b.get(key)} for name, key in (
        ("served MASE / seasonal naive (geometric mean)", "geo_mean_relative"), ("mean MASE", "mean_mase"),
        ("median MASE", "median_mase"), ("p10-p90 coverage", "coverage"), ("series", "series"))]
    reasons, worse = [], []
    if b.get("geo_mean_relative") is None or a.get("geo_mean_relative") is None:
        reasons.append("a backtest has no served MASE relative to seasonal naive: run backtest again")
    elif b["geo_mean_relative"] >= a["geo_mean_relative"]:
        reasons.append(f"it does not beat the champion: {b['geo_mean_relative']:.3f} of seasonal naive's error "
                       f"against {a['geo_mean_relative']:.3f}")
    coverage = b.get("coverage")
    if coverage is None or not COVERAGE[0] <= coverage <= COVERAGE[1]:
        reasons.append(f"its p10-p90 coverage {coverage if coverage is None else f'{coverage:.2f}'} is outside "
                       f"{COVERAGE[0]:.2f}-{COVERAGE[1]:.2f}")
    before, after = _per_metric(theirs), _per_metric(mine)
    for metric in sorted(set(before) & set(after)):
        ratio = after[metric] / before[metric] if before[metric] > 0 else 1.0
        rows.append({"figure": f"MASE {metric}", "champion": before[metric], "candidate": after[metric]})
        if ratio > 1.0:
            worse.append(f"{metric} {before[metric]:.3f} -> {after[metric]:.3f} ({ratio - 1:+.0%})")
        if ratio > WORSE:
            reasons.append(f"{metric} much worse: {before[metric]:.3f} -> {after[metric]:.3f}")
    return Verdict(candidate, champion, not reasons, True, reasons, worse, rows, mine.get("dataset"))

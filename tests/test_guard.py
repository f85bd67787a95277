"""The promotion guard: a candidate replaces the champion only when its backtest beats the
champion's on the same windows, keeps its coverage in range and makes no metric much worse;
`models promote` shows the comparison and refuses otherwise, unless --force (recorded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from argus_core.access import audit
from argus_core.cli.main import main
from argus_core.model import guard, registry

ROOT = Path(__file__).resolve().parents[1]
CHAMPION = registry.champion_model_id(ROOT / "models")


@pytest.fixture
def models(tmp_path) -> Path:
    """The shipped models: the champion with its backtest, the retired one as the candidate."""
    target = tmp_path / "models"
    shutil.copytree(ROOT / "models", target, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    return target


def candidate_of(models: Path) -> str:
    return next(m for m in registry.read(models)["models"] if m != CHAMPION)


def write_backtest(models: Path, model_id: str, factor: float = 1.0, coverage: float | None = None,
                   metric_factor: dict | None = None, **changes) -> None:
    """A hand-made backtest for ``model_id``: the champion's own, every MASE times ``factor``."""
    summary = json.loads((ROOT / "models" / CHAMPION / "backtest.json").read_text())
    summary.update(model_id=model_id, **changes)
    for figures in summary["overall"].values():
        for name in ("mean_mase", "median_mase", "geo_mean_relative"):
            figures[name] *= factor
        if coverage is not None:
            figures["coverage"] = coverage
    for row in summary["per_metric"]:
        row["mase"] *= factor * (metric_factor or {}).get(row["metric"], 1.0)
    (models / model_id / "backtest.json").write_text(json.dumps(summary))


def test_a_candidate_that_beats_the_champion_on_the_same_windows_passes(models):
    other = candidate_of(models)
    write_backtest(models, other, 0.9)
    verdict = guard.judge(models, other)
    assert verdict.ok and verdict.scored and verdict.champion == CHAMPION and not verdict.worse
    rows = {r["figure"]: r for r in verdict.rows}
    assert rows["served MASE / seasonal naive (geometric mean)"]["candidate"] == pytest.approx(
        0.9 * rows["served MASE / seasonal naive (geometric mean)"]["champion"])


@pytest.mark.parametrize("case, says", [
    ("no backtest", "has no backtest of its own"),
    ("another model's backtest", "has no backtest of its own"),
    ("other windows", "was backtested on other windows"),
    ("not better", "does not beat the champion"),
    ("coverage out of range", "coverage 0.55 is outside 0.70-0.90"),
    ("one metric much worse", "mem_used_pct much worse"),
])
def test_a_candidate_is_refused_with_the_reason(models, case, says):
    other = candidate_of(models)
    if case == "another model's backtest":  # a copy of the champion's file, its model id and all
        shutil.copy(models / CHAMPION / "backtest.json", models / other / "backtest.json")
    elif case == "other windows":
        write_backtest(models, other, 0.9, origins=3)
    elif case == "not better":
        write_backtest(models, other, 1.0)
    elif case == "coverage out of range":
        write_backtest(models, other, 0.9, coverage=0.55)
    elif case == "one metric much worse":
        write_backtest(models, other, 0.9, metric_factor={"mem_used_pct": 1.3})
    verdict = guard.judge(models, other)
    assert not verdict.ok and any(says in r for r in verdict.reasons), verdict.reasons
    assert verdict.scored == (case not in ("no backtest", "another model's backtest", "other windows"))


def test_a_metric_a_little_worse_passes_but_is_named(models):
    other = candidate_of(models)
    write_backtest(models, other, 0.9, metric_factor={"disk_usage_pct": 1.15})  # 0.9 x 1.15 = +3.5%
    verdict = guard.judge(models, other)
    assert verdict.ok and len(verdict.worse) == 1 and verdict.worse[0].startswith("disk_usage_pct")


def test_models_promote_refuses_past_the_guard_unless_forced_and_records_it(models, capsys):
    other = candidate_of(models)
    write_backtest(models, other, 1.2)
    assert main(["models", "--models", str(models), "promote", other]) == 1
    captured = capsys.readouterr()
    assert "does not beat the champion" in captured.err and "champion" in captured.out and "candidate" in captured.out
    assert registry.champion_model_id(models) == CHAMPION  # nothing changed
    assert main(["models", "--models", str(models), "promote", other, "--force"]) == 0
    assert "forced past the guard" in capsys.readouterr().out
    assert registry.champion_model_id(models) == other
    line = audit.trail(models).iloc[0]
    assert line["action"] == "model.promote" and line["detail"].startswith("forced past the guard")
    assert main(["models", "--models", str(models), "rollback"]) == 0
    write_backtest(models, other, 0.9)
    assert main(["models", "--models", str(models), "promote", other]) == 0  # past the guard: no --force
    assert registry.champion_model_id(models) == other and audit.trail(models).iloc[0]["detail"] == ""

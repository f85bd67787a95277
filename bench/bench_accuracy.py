"""Forecast accuracy on the real sets, every model and every aggregate in the same run, and what
each part of the recipe contributes.

    .venv/bin/python bench/bench_accuracy.py [--sets nab-aws,jumpstarter-d2] [--variants readme,fixed,...]
                                             [--classical mstl] [--classical-origins 8] [--seed N] [--work DIR]

Every step is the command a user runs (``python -m argus_core import / train / backtest``), so
the figures are what the README's "Your own data" gives:

- ``readme``: ``train --holdout 0.3 --epochs 12 --batches-per-epoch 60`` with no tuning flags
  (the recipe is chosen by validation, seasonal inputs on, the served forecast chosen per series);
- ``fixed``: the recipe the README used before (``--encoder-length 48 --hidden-size 16``), with
  seasonal inputs: what the recipe choice adds against it;
- ``no-seasonal``: the same fixed recipe with ``--seasonal-inputs none``: what the seasonal
  inputs add;
- ``shifts``: the README's command with ``--level-shifts 0.2`` (a fifth of the training windows
  given a step that lasts into the forecast): what the lasting steps add;
- ``longer``: the README's command with ``--epochs 24``: what twice the training budget adds.

Each backtest scores the raw TFT, the served forecast (``served``: what the product forecasts),
naive and seasonal naive on every origin of the hold-out (the last 30 % of every series, origins
every 8 h, 8 h ahead). With ``--classical``, a second backtest of the ``readme`` model (and of the
``shifts`` and ``longer`` ones) adds the classical model on the last ``--classical-origins`` origins of every
series (MSTL refits at every origin cost about a second each on this machine), all models scored
on those origins.
Aggregates: geometric mean over series of MASE / seasonal naive's (BOOM's), mean and median MASE,
share of series best, p10-p90 coverage. ``--seed`` is train's seed: runs of several seeds say how
much of a difference between variants is the draw of the training windows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PYTHON = sys.executable
SETS = {
    "nab-aws": [str(SHARED / "nab-aws"), "--mapping", str(ROOT / "mappings" / "nab-aws.toml")],
    "jumpstarter-d2": [str(SHARED / "jumpstarter-d2" / "metrics.parquet"),
                       "--labels", str(SHARED / "jumpstarter-d2" / "anomaly_windows.csv")],
}
COMMON = ["--holdout", "0.3", "--epochs", "12", "--batches-per-epoch", "60", "--fresh"]
VARIANTS = {
    "readme": [],
    "fixed": ["--encoder-length", "48", "--hidden-size", "16"],
    "no-seasonal": ["--encoder-length", "48", "--hidden-size", "16", "--seasonal-inputs", "none"],
    "shifts": ["--level-shifts", "0.2"],
    "longer": ["--epochs", "24"],  # twice the budget; early stopping (patience 4) still ends a plateau
}
COLUMNS = (("geo_mean_relative", "MASE / SN (geo)"), ("mean_mase", "mean MASE"), ("median_mase", "median MASE"),
           ("share_best", "share best"), ("coverage", "p10-p90 cov."))


def cli(*args: str, log: Path) -> None:
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ python -m argus_core {' '.join(args)}\n")
        out.flush()
        code = subprocess.call([PYTHON, "-m", "argus_core", *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    if code:
        raise SystemExit(f"`python -m argus_core {' '.join(args)}` failed ({code}); see {log}")
    print(f"  {args[0]} done in {time.perf_counter() - started:.0f} s", flush=True)


def champion_dir(models: Path) -> Path:
    return models / json.loads((models / "registry.json").read_text())["champion"]


def table(title: str, summary: dict) -> None:
    print(f"\n{title}: {summary['series']} series, {summary['origins']} origins")
    print(f"| model | {' | '.join(name for _, name in COLUMNS)} |")
    print("| --- |" + " ---: |" * len(COLUMNS))
    for model in summary["models"]:
        scores = summary["overall"][model]
        print(f"| {model} | " + " | ".join(f"{scores.get(key, float('nan')):.3f}" for key, _ in COLUMNS) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--classical", default="none", help="mstl, autoarima, autoets or none")
    parser.add_argument("--classical-origins", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="train's seed (default 0, train's own default)")
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "bench-accuracy")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "commands.log"
    for name in args.sets.split(","):
        dataset = args.work / name
        if not (dataset / "manifest.json").exists():
            print(f"{name}: import", flush=True)
            cli("import", *SETS[name], "--dataset", str(dataset), log=log)
        for variant in args.variants.split(","):
            models = args.work / f"models-{name}-{variant}"
            print(f"{name} / {variant}: train", flush=True)
            cli("train", "--dataset", str(dataset), "--models", str(models), *COMMON, "--seed", str(args.seed),
                *VARIANTS[variant], log=log)
            cli("backtest", "--dataset", str(dataset), "--models", str(models), "--classical", "none", log=log)
            model = champion_dir(models)
            info = json.loads((model / "training_info.json").read_text())
            summary = json.loads((model / "backtest.json").read_text())
            recipe = info.get("recipe", {})
            table(f"{name} / {variant} ({model.name}, {info['seconds']:.0f} s of training"
                  + (f"; recipe chosen {recipe['chosen']}" if recipe else "") + f"; serving {info.get('serving')})",
                  summary)
            for tried in recipe.get("candidates", []):
                print(f"  candidate {tried['encoder_length']}/{tried['hidden_size']}/{tried['center']}: "
                      f"validation MASE {tried.get('validation_mase')}, {tried.get('seconds')} s")
            if variant in ("readme", "shifts", "longer") and args.classical != "none":
                print(f"{name} / {variant}: backtest with {args.classical} on the last {args.classical_origins} "
                      "origins of every series", flush=True)
                cli("backtest", "--dataset", str(dataset), "--models", str(models), "--classical", args.classical,
                    "--origins", str(args.classical_origins), "--classical-origins", str(args.classical_origins),
                    log=log)
                table(f"{name} / {variant} with {args.classical} (last {args.classical_origins} origins per series)",
                      json.loads((model / "backtest.json").read_text()))


if __name__ == "__main__":
    main()

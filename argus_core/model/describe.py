"""The serving table in words and frames, for the pages: what forecasts each series, the rule
that chose it, what serves a series training never saw. Torch-free: reads ``serving.json`` only.
"""

from __future__ import annotations

import pandas as pd

from argus_core.model import climb, layout, serving


def served_labels(served_by: dict[str, str], server: str, metrics) -> dict[str, str]:
    """metric -> what forecasts it on ``server`` (a ``FleetForecast.served_by``): the TFT, a simple
    method or a blend."""
    options = serving.candidates()
    labels = {name: choice.label for name, choice in options.items()}
    labels[climb.NAME] = climb.LABEL
    tft = serving.LABELS[serving.TFT]
    return {str(m): labels.get(served_by.get(layout.series_key(server, str(m)), serving.TFT), tft) for m in metrics}


def serving_rule() -> str:
    """How a series' forecast is chosen, in words, from the constants that choose it."""
    return (f"another candidate replaces the TFT only where its validation error is at least {serving.MARGIN:.0%} "
            f"lower over at least {serving.MIN_ORIGINS} origins and it wins at {serving.MIN_WIN_SHARE:.0%} of them "
            f"or more; series with fewer than {serving.MIN_ORIGINS} origins each are decided together, on their "
            "errors relative to the TFT's")


def serving_defaults(model_dir) -> str:
    """What serves a series the model never saw (a server added after training), in words."""
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

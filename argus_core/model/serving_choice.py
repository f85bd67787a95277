"""Choosing the serving table after training: every candidate of ``serving`` scored per series on
its validation window (this runs the network), the best kept where it wins clearly.

Apart from ``serving`` so that the table's format and its use at forecast time never import the
forecaster or the backtest (``serving`` is loaded by both).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from argus_core.model import layout, serving
from argus_core.model.spec import ModelSpec


def choose(network, windows, spec: ModelSpec, validation_start: dict[str, int] | int,
           log: Callable[[str], None], batch_size: int = 128) -> serving.Serving | None:
    """Score every candidate per series on its validation window and keep the best.

    ``windows``: a ``WindowBatches`` over the rows before the hold-out (complete=False);
    ``validation_start``: per series (or for all) the time_idx where validation starts."""
    import torch

    from argus_core.model import forecast

    season = serving.season_steps(spec)
    if not season:
        log("serving: no daily season at this step; the TFT serves every series")
        return None
    starts = (validation_start if isinstance(validation_start, dict)
              else {str(n): int(validation_start) for n in windows.names})
    from argus_core.model.backtest import origin_windows

    chosen = origin_windows(windows, spec, starts, spec.horizon, None)
    if not len(chosen):
        log("serving: no validation origin with a whole horizon; the TFT serves every series")
        return None
    tft = []
    with torch.inference_mode():
        for first in range(0, len(chosen), batch_size):
            batch = chosen[first:first + batch_size]
            x, _, scales = windows.window_inputs(batch)
            tft.append(forecast.sorted_prediction(network(x)) * scales[:, None, None, None])
    tft = np.concatenate(tft)  # (B, targets, H, Q)
    enc, horizon = spec.encoder_length, spec.horizon
    unknown = list(spec.unknown_reals)
    names = [str(n) for n in windows.names]
    options = serving.candidates()
    table: dict[str, dict] = {}
    evidence: dict[str, tuple[dict, dict]] = {}  # series key -> (mean error per candidate, per-origin errors)
    target_of: dict[str, str] = {}
    scales: dict[str, float] = {}
    for t, target in enumerate(spec.targets):
        scales[target] = _validation_band_scale(tft[:, t], chosen, windows.values[:, :, unknown.index(target)], enc,
                                                horizon)
        tft[:, t] = serving.widen(tft[:, t], scales[target])
        values = windows.values[:, :, unknown.index(target)]
        seasonal_all, last_all = serving.series_paths(values, season)
        errors: dict[int, dict[str, list[float]]] = {}
        per_origin: dict[int, dict[str, list[float]]] = {}  # mean error of each origin
        entries: dict[int, dict] = {}
        for b, (s, w) in enumerate(chosen):
            origin = w + enc
            if s not in entries:
                sample = values[s, :max(0, starts[names[s]] - windows.t0)]
                seasonal_band, naive_band = serving.bands(sample, horizon, season)
                in_sample = np.abs(sample[season:] - sample[:-season]) if len(sample) > season else np.array([])
                in_sample = in_sample[~np.isnan(in_sample)]
                # the MASE scale: the training part's mean absolute seasonal-naive error
                # (None for a series whose training part is shorter than a season: JSON has no NaN)
                scale = round(float(in_sample.mean()), 9) if len(in_sample) else None
                entries[s] = {"seasonal_band": seasonal_band, "naive_band": naive_band, "scale": scale}
                errors[s] = {name: [] for name in options}
                per_origin[s] = {name: [] for name in options}
            actual = values[s, origin:origin + horizon]
            seen = ~np.isnan(actual)
            if not seen.any():
                continue
            sn_path, last = seasonal_all[s, origin:origin + horizon], float(last_all[s, origin])
            for name, option in options.items():
                q = serving.served(option, tft[b, t], sn_path, last, entries[s]["seasonal_band"],
                                   entries[s]["naive_band"])
                error = np.abs(q[seen, 1] - actual[seen])
                errors[s][name].extend(error.tolist())
                per_origin[s][name].append(float(error.mean()))
        for s, entry in entries.items():
            scores = {name: float(np.mean(e)) for name, e in errors[s].items() if e}
            if serving.TFT not in scores:
                continue
            key = names[s] if spec.layout == "series" else layout.series_key(names[s], target)
            table[key] = {"by": serving.TFT, "scores": {k: round(v, 6) for k, v in scores.items()},
                          "origins": len(per_origin[s][serving.TFT]), **entry}
            evidence[key] = (scores, per_origin[s])
            target_of[key] = target
    # a series with enough validation origins is decided alone; the rest together (serving.pooled_winner)
    thin = [key for key, (_, origins) in evidence.items() if len(origins[serving.TFT]) < serving.MIN_ORIGINS]
    together = (serving.pooled_winner([evidence[k][0] for k in thin], [evidence[k][1] for k in thin]) if thin
                else serving.TFT)
    short = set(thin)
    for key, (scores, origins) in evidence.items():
        entry = table[key]
        entry["by"] = together if key in short else serving.winner(scores, origins)
        if key in short:
            entry["pooled"] = len(thin)  # decided with the other series too short to decide alone
        if options[entry["by"]].tft_weight >= 1.0 or options[entry["by"]].other != serving.NAIVE:
            entry["naive_band"] = entry["naive_band"][:0]  # only naive-served series keep theirs
    if thin:
        log(f"serving: {len(thin)} series with fewer than {serving.MIN_ORIGINS} validation origins each, "
            f"decided together ({sum(len(evidence[k][1][serving.TFT]) for k in thin)} origins): {together}")
    # a series the table does not hold (a server added later) is served as its target's series are, together
    defaults = {}
    for target in spec.targets:
        mine = [key for key in evidence if target_of[key] == target]
        defaults[target] = (serving.pooled_winner([evidence[k][0] for k in mine], [evidence[k][1] for k in mine])
                            if mine else serving.TFT)
    result = serving.Serving(season, table, scales, defaults)
    log("serving (chosen per series on the validation window): "
        + ", ".join(f"{name} {count}" for name, count in result.counts().items())
        + "; the TFT's p10-p90 band stretched " + ", ".join(f"{v:.2f}x" for v in scales.values())
        + f" to hold {serving.COVERAGE:.0%} of the validation actuals")
    return result



def _validation_band_scale(q: np.ndarray, chosen: np.ndarray, values: np.ndarray, enc: int, horizon: int) -> float:
    """``serving.band_scale`` over every validation origin's real actuals (q: (B, H, 3))."""
    origins = chosen[:, 1] + enc
    actual = values[chosen[:, :1], origins[:, None] + np.arange(horizon)[None, :]]  # (B, H)
    seen = ~np.isnan(actual)
    return serving.band_scale(q[seen], actual[seen]) if seen.any() else 1.0

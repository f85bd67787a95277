"""A quantile loss that can weigh every window's errors by that window's own scale.

pytorch-forecasting computes the TFT's loss on forecasts in the metrics' own units. With one
weight per target (1 / the target's spread over the whole training set) a metric whose level
differs a lot between servers but barely moves inside a window, such as disk usage (servers
sit anywhere from 30 to 80 %, a day's log growth is one or two points), counts for almost
nothing, and the network never learns its within-day shape: on the simulated hold-out its
error was six times the seasonal-naive error.

``loss_scale = "window"`` divides each window's errors, target by target, by the scale the
network's own normaliser used for that window (the encoder's spread, floored). That is the
quantile loss in the network's normalised space: every target of every window counts in
units of its own recent variability, which is also how MASE and the backtest score it.

``MultiLoss`` hands one weight to all of its targets; ``PerTargetWeights`` takes a list, one
(batch,) tensor per target, and falls back to the fixed per-target weights without one.
"""

from __future__ import annotations

import torch
from pytorch_forecasting.metrics import MultiLoss


class PerTargetWeights(MultiLoss):
    def _parts(self, y_actual):
        target, weight = y_actual if isinstance(y_actual, (list, tuple)) else (y_actual, None)
        if isinstance(weight, (list, tuple)):
            share = 1.0 / len(self.metrics)
            return [((target[i], weight[i]), share) for i in range(len(self.metrics))]
        return [((target[i], weight), self.weights[i]) for i in range(len(self.metrics))]

    def update(self, y_pred, y_actual, **kwargs) -> None:
        # ``compute`` multiplies each target by its fixed weight: per-window weights are rescaled
        # here so that the computed value matches ``forward``
        for i, (metric, prediction, ((target, weight), factor)) in enumerate(
                zip(self.metrics, y_pred, self._parts(y_actual), strict=True)):
            if weight is not None and factor != self.weights[i]:
                weight = weight * (factor / self.weights[i])
            metric.update(prediction, (target, weight))

    def forward(self, y_pred, y_actual, **kwargs):
        results = [metric(prediction, actual) * factor
                   for metric, prediction, (actual, factor) in zip(self.metrics, y_pred, self._parts(y_actual),
                                                                   strict=True)]
        return results[0] if len(results) == 1 else torch.stack(results, dim=0).sum(0)

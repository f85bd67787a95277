"""Target normalisation per encoder window, with a floor on the scale.

Each forecast window is standardised by its own encoder's spread and centred on its encoder's
mean, last value or last hour's mean (``center_on``, ``train --center``; pytorch-forecasting's
``EncoderNormalizer`` underneath), so the network predicts deviations from where
a series is now, whatever server it belongs to: a server never seen in training is scaled
like any other. The window's center and scale also go in as static inputs
(``add_target_scales``), so absolute levels, which thresholds are about, stay visible.

The floor matters for flat series: swap sits at the same value for days, and a spread of 1e-8
would blow the first real movement up to millions. ``min_scale`` is a small share of the
metric's spread over the whole training set.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from pytorch_forecasting.data import EncoderNormalizer


class FlooredEncoderNormalizer(EncoderNormalizer):
    center_on = "mean"  # directories written before the choice existed read as "mean"

    def __init__(self, min_scale: float = 1e-3, method: str = "standard", center: bool = True,
                 max_length: int | None = None, transformation=None, method_kwargs: dict | None = None,
                 center_on: str = "mean") -> None:
        super().__init__(method=method, center=center, max_length=max_length, transformation=transformation,
                         method_kwargs=method_kwargs)
        self.min_scale = min_scale
        self.center_on = center_on  # see ``window_center``

    def _set_parameters(self, y_center, y_scale) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "scale is below 1e-7": the floor below handles it
            super()._set_parameters(y_center, y_scale)
        if self.center_on != "mean":
            self.center_ = window_center(y_center, self.center_on)
        if isinstance(self.scale_, torch.Tensor):
            self.scale_ = torch.clamp(self.scale_, min=self.min_scale)
        else:
            self.scale_ = np.maximum(self.scale_, np.asarray(self.min_scale, dtype=np.asarray(self.scale_).dtype))


RECENT_STEPS = 12  # "recent": the mean of the window's last 12 steps (an hour at 5 minutes)


def window_center(values, center_on: str):
    """The center of encoder window(s) along the last axis: "mean", "last" value or "recent" mean."""
    if not isinstance(values, torch.Tensor):
        values = np.asarray(values)  # the stock dataset fits on a pandas Series
    if center_on == "last":
        return values[..., -1]
    part = values[..., -RECENT_STEPS:] if center_on == "recent" else values
    return part.mean(-1) if isinstance(part, torch.Tensor) else np.mean(part, axis=-1)

"""The model wing's front door: a trained model, loaded, behind one small surface.

    forecaster = Forecaster.load("models/tft-...")       # or Forecaster.champion("models")
    result = forecaster.forecast(history)                # FleetForecast: quantiles, importance, ...

Nothing outside ``argus_core.model`` needs the network, the dataset parameters or the serving
table: they stay behind this class. Torch is imported when a model is first loaded, not when
this module is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from argus_core.model import forecast
from argus_core.model.forecast import FleetForecast
from argus_core.model.spec import ModelSpec


class Forecaster:
    """One loaded model (weights, spec, serving table); loads are shared per directory and weights."""

    def __init__(self, loaded) -> None:
        self._loaded = loaded  # artifacts.LoadedModel, private to the wing

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """The model in directory ``path``; ModelNotFound / ModelDirectoryError when it is not one."""
        return cls(forecast.load_model_dir(path))

    @classmethod
    def champion(cls, model_root: str | Path, model_id: str | None = None) -> Forecaster:
        """``model_id`` in ``model_root``, or its champion; ModelNotFound with the command to fix it."""
        return cls(forecast.load_model(model_root, model_id))

    @property
    def model_id(self) -> str:
        return self._loaded.model_id

    @property
    def path(self) -> Path:
        return Path(self._loaded.path)

    @property
    def spec(self) -> ModelSpec:
        return self._loaded.spec

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(self._loaded.spec.step)

    @property
    def horizon(self) -> int:
        return int(self._loaded.spec.horizon)

    @property
    def history_steps(self) -> int:
        """Rows per server a forecast reads (the encoder window and what its inputs look back)."""
        return int(self._loaded.spec.history_steps)

    def forecast(self, history: pd.DataFrame, as_of: pd.Timestamp | None = None) -> FleetForecast:
        """Every server of ``history`` for the horizon after its last step (up to ``as_of``),
        reused while the model, the servers, the rows and the last step are unchanged."""
        return forecast.cached_forecast(self._loaded, history, as_of)

    def __repr__(self) -> str:
        return f"Forecaster({self.model_id!r})"


def promote(model_root: str | Path, model_id: str) -> dict:
    """Make ``model_id`` the champion, only once it loads (weights, spec, serving table): a model
    that cannot forecast never becomes the one the service and the pages serve. The registry is
    unchanged when it does not load."""
    from argus_core.errors import ArgusError, ModelDirectoryError
    from argus_core.model import registry

    if model_id in registry.read(model_root)["models"] and (Path(model_root) / model_id).is_dir():
        try:
            Forecaster.load(Path(model_root) / model_id)
        except ArgusError as exc:
            raise ModelDirectoryError(f"model {model_id} was not promoted: it does not load ({exc})") from exc
    return registry.promote(model_root, model_id)

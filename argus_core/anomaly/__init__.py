"""Abnormal now: the k-means model of nominal behaviour per profile and the live running scorer.

Owns:
    detector    ``AnomalyModel``: fit on nominal rows, save and load as plain JSON, score a frame
    running     ``RunningScorer``: the same scores kept up to date row by row (the live cycles)

and, here, the two ways a caller asks "who is abnormal now?" of a window of history, both
returning ``(one row per server at its last step, every scored step or None)``, which is what
``argus_core.fleet.assess`` takes:

    window_judge(detector, dataset or frame)     scores the window again each call (pages, CLI, demo)
    running_judge(scorer, dataset, manifest)     feeds a RunningScorer only the new rows (the service)

scikit-learn and numpy only: no torch. May import: ``argus_core.data``, ``argus_core.errors``,
``argus_core.atomic``. Never ``model``, ``fleet``, ``views``, ``runs``, ``live`` or ``cli``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from argus_core.anomaly.detector import (
    FILE,
    AnomalyModel,
    AnomalySettings,
    abnormal_now,
    dataset_metrics,
    deviations,
    fit,
    fit_dataset,
    known_windows,
    score,
    summarise,
    with_history,
)
from argus_core.anomaly.running import RunningScorer
from argus_core.data import schema
from argus_core.errors import ArgusError

Judge = Callable[[pd.DataFrame], tuple[pd.DataFrame | None, pd.DataFrame | None]]

__all__ = ["FILE", "AnomalyModel", "AnomalySettings", "Judge", "RunningScorer", "abnormal_now", "dataset_metrics",
           "deviations", "fit", "fit_dataset", "known_windows", "running_judge", "score", "summarise",
           "window_judge", "with_history"]


def window_judge(detector: AnomalyModel | str | Path | None, dataset: str | Path | None = None,
                 manifest: dict | None = None, frame: pd.DataFrame | None = None) -> Judge:
    """A judge that scores each window again with ``detector`` (or the one saved beside the model
    in that directory), its baseline read as far back as it needs from ``dataset`` or, for data
    held in memory (the Incident demo), from ``frame``. No detector this Argus can read, or data it
    cannot score, gives (None, None): abnormal now is not known."""
    if detector is not None and not isinstance(detector, AnomalyModel):
        try:
            detector = AnomalyModel.load(detector)
        except ArgusError:
            detector = None
    if detector is None:
        return lambda history: (None, None)

    def judge(history: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        if history.empty:
            return None, None
        since = pd.to_datetime(history[schema.TIMESTAMP], utc=True).min()
        try:
            if frame is not None:
                longer = _from_frame(detector, history, frame)
            elif dataset is not None:
                longer = with_history(detector, history, dataset, manifest)
            else:
                longer = history
            scored = score(detector, longer, since)
        except ArgusError:
            return None, None
        return summarise(scored), scored

    return judge


def _from_frame(detector: AnomalyModel, history: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``history``'s servers with as many rows of ``frame`` before its last step as the baseline reads."""
    last = pd.to_datetime(history[schema.TIMESTAMP], utc=True).max()
    start = last - pd.Timedelta(detector.step) * detector.history_steps
    stamps = pd.to_datetime(frame[schema.TIMESTAMP], utc=True)
    keep = (stamps > start) & (stamps <= last) & frame[schema.SERVER].isin(history[schema.SERVER].unique())
    return frame[keep.to_numpy()].reset_index(drop=True)


def running_judge(scorer: RunningScorer, dataset: str | Path, manifest: dict | None = None) -> Judge:
    """A judge that feeds ``scorer`` each window's new rows (the baseline of a server new to it
    read from ``dataset`` once): cheap per cycle, no per-step scores kept."""
    def judge(history: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        try:
            return scorer.follow(history, dataset, manifest), None
        except ArgusError:
            return None, None

    return judge

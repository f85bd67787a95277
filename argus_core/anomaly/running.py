"""Abnormal now, kept up to date row by row: what the live service scores each cycle with.

``anomaly.score`` reads every server's whole baseline (a day or a week of rows) and sums it again
on each call: about 2 M rows for 1,000 servers with a week's baseline, 1.5-3 s of every cycle.
A ``RunningScorer`` keeps, per server, the baseline's rows in a ring with their running sums, its
last few z-scores (the half-hour mean) and the hysteresis's runs, so a new step of 1,000 servers
costs what scoring 1,000 rows costs. Fed a server's rows in time order, it gives what
``anomaly.score`` gives on the same rows (``tests/test_anomaly.py`` holds it to that).

    scorer = RunningScorer(detector)
    scorer.update(rows)            # any servers, any number of new rows each; older rows skipped
    scorer.summary(servers)        # one row per server, as anomaly.summarise gives

A row older than one already scored for its server (a late sample placed in the store) cannot
be added to running sums: ``stale_servers`` finds such servers, and ``reset`` forgets them so
that their history can be fed again in order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from argus_core.anomaly import detector as anomaly
from argus_core.data import schema

_NEVER = np.iinfo(np.int64).min  # "no timestamp yet", as nanoseconds since the epoch (NaT)

# Every per-server array: name -> (shape after the server axis, in units of "m" metrics, "n"
# baseline steps and "r" earlier z-scores; the value of a server with no state; dtype)
_STATE = {
    "ring": (("n", "m"), np.nan, np.float32),  # the baseline's rows, NaN where a metric is missing
    "ring_time": (("n",), _NEVER, np.int64),
    "head": ((), 0, np.int64),  # the ring slot the next row goes to
    "seen": ((), 0, np.int64),  # rows taken in
    "total": (("m",), 0.0, np.float64),  # the ring's sums, sums of squares and counts per metric
    "squares": (("m",), 0.0, np.float64),
    "counts": (("m",), 0, np.int64),
    "recent": (("r", "m"), 0.0, np.float64),  # the last z-scores before the next row
    "last_time": ((), _NEVER, np.int64),
    "over": ((), 0, np.int64),  # steps in a row at or over tau_fast
    "under": ((), 0, np.int64),  # steps in a row under it
    "abnormal": ((), False, bool),
    "since": ((), _NEVER, np.int64),
    "deviation": ((), np.nan, np.float64),  # the last row's score
    "tau_fast": ((), np.nan, np.float64),
    "tau_persist": ((), np.nan, np.float64),
    "shares": (("m",), 0.0, np.float64),  # each metric's share of the last row's deviation
}


class RunningScorer:
    """Per-server running baseline, recent z-scores and hysteresis state for one detector."""

    def __init__(self, model: anomaly.AnomalyModel):
        self.model = model
        self.index: dict[str, int] = {}  # server -> row of every array below
        self.names: list[str] = []
        self.profiles: list[str] = []
        self._profile_codes: dict[str, int] = {}
        self._groups: dict[int, str] = {}  # profile code and reported-metrics bits -> fitted group
        self._capacity = 0
        self.profile_code = np.zeros(0, dtype=np.int64)
        self._allocate(0)

    # --- state ------------------------------------------------------------------------------------
    def _allocate(self, capacity: int) -> None:
        """Room for ``capacity`` servers, the state of those already there kept."""
        sizes = {"m": len(self.model.metrics), "n": self.model.baseline_steps, "r": max(self.model.recent_steps - 1, 1)}
        old = self._capacity
        for name, (shape, fill, dtype) in _STATE.items():
            array = np.full((capacity, *(sizes[k] for k in shape)), fill, dtype=dtype)
            if old:
                array[:old] = getattr(self, name)
            setattr(self, name, array)
        codes = np.zeros(capacity, dtype=np.int64)
        codes[:old] = self.profile_code[:old]
        self.profile_code, self._capacity = codes, capacity

    def _rows_of(self, servers: np.ndarray, profiles: np.ndarray) -> np.ndarray:
        """Array rows for these server names, new servers added."""
        out = np.empty(len(servers), dtype=np.int64)
        for i, (server, profile) in enumerate(zip(servers, profiles, strict=True)):
            row = self.index.get(server)
            if row is None:
                row = len(self.names)
                if row >= self._capacity:
                    self._allocate(max(16, 2 * self._capacity))
                self.index[server] = row
                self.names.append(server)
                self.profiles.append(profile)
                self.profile_code[row] = self._profile_codes.setdefault(profile, len(self._profile_codes))
            out[i] = row
        return out

    def reset(self, servers) -> None:
        """Forget these servers' state (their rows are fed again from the start)."""
        rows = [self.index[s] for s in servers if s in self.index]
        for name, (_, fill, _) in _STATE.items():
            getattr(self, name)[rows] = fill

    # --- feeding ----------------------------------------------------------------------------------
    def stale_servers(self, frame: pd.DataFrame) -> list[str]:
        """Servers of ``frame`` holding a row at or before their last scored one that the scorer
        did not take in (a late sample stored since): their running state no longer matches."""
        if frame.empty or not self.names:
            return []
        codes, names = pd.factorize(frame[schema.SERVER])  # one lookup per server, not per row
        rows = np.array([self.index.get(str(name), -1) for name in names], dtype=np.int64)[codes]
        known = rows >= 0
        if not known.any():
            return []
        rows, stamps = rows[known], anomaly.utc_ns(frame[schema.TIMESTAMP])[known]
        # compare where both the ring and the frame hold rows: from the later of their first rows
        # on, to the last row scored
        first = np.full(self._capacity, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, rows, stamps)
        n, every = self.model.baseline_steps, np.arange(self._capacity)
        held = np.minimum(self.seen, n)
        oldest = np.where(held > 0, self.ring_time[every, np.where(self.seen >= n, self.head, 0)],
                          np.iinfo(np.int64).max)
        lo = np.maximum(first, oldest)
        have = np.bincount(rows[(stamps >= lo[rows]) & (stamps <= self.last_time[rows])], minlength=self._capacity)
        # the ring's times rise in the order rows went in, so it holds ``have`` rows from ``lo`` on
        # exactly when its have-th newest row is at or after ``lo``: one look per server, not a scan
        newest_kth = self.ring_time[every, (self.head - np.maximum(have, 1)) % n]
        odd = np.flatnonzero((have > 0) & ((have > held) | (newest_kth < lo)))
        return [self.names[r] for r in odd]

    def prime(self, frame: pd.DataFrame, since: pd.Timestamp) -> int:
        """Take in ``frame`` (servers new to the scorer, or reset) with its rows before ``since``
        as baseline only, placed in one pass rather than scored one by one, and score the rest:
        the same state as ``update(frame)``, with the hysteresis starting at ``since`` (as
        ``anomaly.score(..., since)`` starts it)."""
        if frame.empty:
            return 0
        frame = frame.sort_values([schema.SERVER, schema.TIMESTAMP], kind="stable").reset_index(drop=True)
        stamps = anomaly.utc_ns(frame[schema.TIMESTAMP])
        cut = pd.Timestamp(since).value  # nanoseconds since the epoch, UTC
        rows = self._server_rows(frame)  # first: it may grow the arrays
        early = (stamps < cut) & (self.seen[rows] == 0)
        if early.any():
            self._fill(frame[early].reset_index(drop=True))
        return int(early.sum()) + self.update(frame[~early])

    def _fill(self, frame: pd.DataFrame) -> None:
        """The state after feeding ``frame`` (sorted; servers with no state yet) with a fresh
        hysteresis: all but each server's last few rows placed in the ring in one pass, those few
        scored (their z-scores feed the half-hour mean of the rows after them)."""
        n, recent = self.model.baseline_steps, self.model.recent_steps - 1
        rows = self._server_rows(frame)
        stamps = anomaly.utc_ns(frame[schema.TIMESTAMP])
        starts, sizes, rank = self._runs(rows)
        bulk = rank < np.repeat(sizes, sizes) - recent
        count = np.repeat(np.maximum(sizes - recent, 0), sizes)
        kept = bulk & (rank >= count - n)  # the bulk rows still in the ring after all of them went in
        values = anomaly.metric_matrix(frame, self.model.metrics).astype(np.float32)
        self.ring[rows[kept], rank[kept] % n] = values[kept]
        self.ring_time[rows[kept], rank[kept] % n] = stamps[kept]
        own = rows[starts]
        self._resum(own)
        self.head[own], self.seen[own] = count[starts] % n, count[starts]
        self.last_time[own] = np.where(count[starts] > 0, stamps[np.maximum(starts + count[starts] - 1, 0)],
                                       _NEVER)
        left = ~bulk
        step_rank = rank[left] - count[left]
        for k in range(int(step_rank.max()) + 1 if left.any() else 0):
            pick = step_rank == k
            self._step(rows[left][pick], values[left][pick], stamps[left][pick])
        self.over[own], self.under[own], self.abnormal[own], self.since[own] = 0, 0, False, _NEVER

    @staticmethod
    def _runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rows grouped by server: each server's first row and row count, and each row's rank
        within its server."""
        starts = np.r_[0, np.flatnonzero(rows[1:] != rows[:-1]) + 1]
        sizes = np.diff(np.r_[starts, len(rows)])
        return starts, sizes, np.arange(len(rows)) - np.repeat(starts, sizes)

    def _resum(self, rows: np.ndarray) -> None:
        """Sums, sums of squares and counts of these servers' rings, from the ring itself."""
        ring = self.ring[rows]
        missing = np.isnan(ring)
        filled = np.where(missing, 0.0, ring.astype(np.float64))
        self.total[rows] = filled.sum(axis=1)
        self.squares[rows] = np.einsum("snm,snm->sm", filled, filled)
        self.counts[rows] = ring.shape[1] - missing.sum(axis=1)

    def _server_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's array row (servers new to the scorer added), from the server column's codes."""
        codes, names = pd.factorize(frame[schema.SERVER])
        first = np.unique(codes, return_index=True)[1]
        profiles = anomaly.profiles_of(frame.iloc[first])
        return self._rows_of(np.asarray(names.astype(str)), profiles)[codes]

    def update(self, frame: pd.DataFrame) -> int:
        """Take in ``frame``'s rows newer than each server's last scored one, in time order; the
        number taken in."""
        if frame.empty:
            return 0
        rows = self._server_rows(frame)  # first: it may grow the arrays
        newer = anomaly.utc_ns(frame[schema.TIMESTAMP]) > self.last_time[rows]
        if not newer.any():  # a cycle's window holds a day of rows per server, and one new step
            return 0
        frame = frame[newer].sort_values([schema.SERVER, schema.TIMESTAMP], kind="stable").reset_index(drop=True)
        rows = self._server_rows(frame)
        stamps = anomaly.utc_ns(frame[schema.TIMESTAMP])
        fresh = np.ones(len(rows), dtype=bool)
        fresh[1:] &= ~((rows[1:] == rows[:-1]) & (stamps[1:] == stamps[:-1]))  # one row per server and time
        values = anomaly.metric_matrix(frame, self.model.metrics)[fresh].astype(np.float32)
        rows, stamps = rows[fresh], stamps[fresh]
        rank = self._runs(rows)[2]
        for k in range(int(rank.max()) + 1):  # the k-th new row of every server at once
            pick = rank == k
            self._step(rows[pick], values[pick], stamps[pick])
        return int(len(rows))

    def _step(self, rows: np.ndarray, values: np.ndarray, stamps: np.ndarray) -> None:
        model, settings = self.model, self.model.settings
        exact = values.astype(np.float64)
        z = anomaly.z_scores(exact, *anomaly.baseline_stats(self.total[rows], self.squares[rows], self.counts[rows]))
        earlier = np.minimum(self.seen[rows], self.model.recent_steps - 1)
        recent = (self.recent[rows].sum(axis=1) + z) / (earlier + 1)[:, None]
        minutes = (stamps // 60_000_000_000) % 1440
        hours = (minutes // 60 + (minutes % 60) / 60.0).astype(np.float64)
        x = np.column_stack([z, recent, anomaly.time_of_day(hours)])

        groups = self._fitted_groups(rows, values)
        deviation = np.full(len(rows), np.nan)
        fast = np.full(len(rows), np.nan)
        persist = np.full(len(rows), np.nan)
        for group in set(groups):
            mine = groups == group
            fitted = model.profiles[group]
            deviation[mine], self.shares[rows[mine]] = anomaly.profile_deviation(fitted, x[mine])
            fast[mine], persist[mine] = fitted.tau_fast, fitted.tau_persist

        # the hysteresis, one step (anomaly.abnormal_states over a whole series gives the same)
        over = np.where(deviation >= fast, self.over[rows] + 1, 0)
        under = np.where(deviation < fast, self.under[rows] + 1, 0)
        enter = (over >= settings.fast_steps) | (deviation >= np.maximum(persist, fast))
        state = np.where(enter, True, np.where(under >= settings.clear_steps, False, self.abnormal[rows]))
        self.since[rows] = np.where(state & ~self.abnormal[rows], stamps, self.since[rows])
        self.over[rows], self.under[rows], self.abnormal[rows] = over, under, state
        self.deviation[rows], self.tau_fast[rows], self.tau_persist[rows] = deviation, fast, persist
        self.last_time[rows] = stamps

        # this row into the baseline (the one it pushes out of the ring leaves the sums)
        slot = self.head[rows]
        leaving = self.ring[rows, slot].astype(np.float64)
        gone = ~np.isnan(leaving)
        leaving = np.where(gone, leaving, 0.0)
        real = ~np.isnan(exact)
        exact = np.where(real, exact, 0.0)
        self.total[rows] += exact - leaving
        self.squares[rows] += exact * exact - leaving * leaving
        self.counts[rows] += real.astype(np.int64) - gone
        self.ring[rows, slot] = values
        self.ring_time[rows, slot] = stamps
        self.head[rows] = (slot + 1) % model.baseline_steps
        wrapped = rows[self.head[rows] == 0]
        if len(wrapped):  # exact sums again once per ring, so adding and taking away never drift
            self._resum(wrapped)
        if self.model.recent_steps > 1:
            self.recent[rows, self.seen[rows] % (self.model.recent_steps - 1)] = z
        self.seen[rows] += 1

    def _fitted_groups(self, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The fitted group each row is scored in: its profile, split by the metrics its server
        reports over its baseline and this row (``anomaly.groups_of``'s rule)."""
        metrics = self.model.metrics
        held = np.minimum(self.seen[rows], self.model.baseline_steps) + 1
        reported = (self.counts[rows] + ~np.isnan(values)) > 0.5 * held[:, None]
        keys = self.profile_code[rows] << len(metrics) | reported @ (1 << np.arange(len(metrics), dtype=np.int64))
        distinct, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        names = []
        for key, i in zip(distinct, first, strict=True):  # a handful of distinct keys, not one per row
            group = self._groups.get(int(key))
            if group is None:
                profile = self.profiles[rows[i]]
                label = profile + anomaly.group_suffix(metrics, reported[i])
                group = self._groups[int(key)] = anomaly.fitted_group(self.model, label, profile)
            names.append(group)
        return np.array(names, dtype=object)[inverse.ravel()]

    def follow(self, history: pd.DataFrame, dataset, manifest: dict | None = None) -> pd.DataFrame:
        """Abnormal now for the servers of ``history`` (a recent window of ``dataset``, as a
        service cycle reads it): their new rows taken in, and a server new to the scorer, behind
        the window (a gap the window does not cover) or holding a late row reset and fed its
        baseline from the dataset first, scored from the window's start as ``anomaly.score`` does."""
        if history.empty:
            return self.summary([])
        servers = [str(name) for name in pd.unique(history[schema.SERVER])]  # per server, not per row
        start = anomaly.utc_ns(history[schema.TIMESTAMP]).min()
        behind = [s for s in servers if s not in self.index or self.last_time[self.index[s]] < start]
        again = sorted(set(behind) | set(self.stale_servers(history)))
        if again:
            self.reset(again)
            mine = history[history[schema.SERVER].astype(str).isin(again).to_numpy()]
            longer = anomaly.with_history(self.model, mine, dataset, manifest)
            self.prime(longer[longer[schema.SERVER].astype(str).isin(again).to_numpy()],
                       pd.Timestamp(int(start), tz="UTC"))
        self.update(history)
        return self.summary(servers)

    # --- reading ----------------------------------------------------------------------------------
    def summary(self, servers=None) -> pd.DataFrame:
        """One row per server (``servers``, or every one seen) at its last scored row, as
        ``anomaly.summarise`` gives: abnormal, deviation, thresholds, drivers, abnormal_since."""
        names = self.names if servers is None else [s for s in map(str, servers) if s in self.index]
        rows = np.array([self.index[s] for s in names], dtype=np.int64)
        rows = rows[self.last_time[rows] != _NEVER] if len(rows) else rows
        stamp = pd.to_datetime(self.last_time[rows], utc=True)
        since = pd.to_datetime(np.where(self.abnormal[rows], self.since[rows], _NEVER), utc=True)  # _NEVER is NaT
        out = pd.DataFrame({
            schema.SERVER: [self.names[r] for r in rows],
            schema.TIMESTAMP: stamp,
            schema.PROFILE: [self.profiles[r] for r in rows],
            "deviation": self.deviation[rows], "tau_fast": self.tau_fast[rows], "tau_persist": self.tau_persist[rows],
            "drivers": anomaly.driver_names(self.model.metrics, self.shares[rows]) if len(rows) else [],
            "abnormal": self.abnormal[rows], "abnormal_since": since,
        })
        return out.sort_values(["abnormal", "deviation"], ascending=[False, False]).reset_index(drop=True)

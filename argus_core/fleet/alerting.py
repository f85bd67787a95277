"""Alert rules on what Argus computes, and the alerts they open and close.

A rules file (TOML; ``deploy/alerts.toml`` is the shipped default, ``serve --rules FILE``) holds:

    [thresholds.profile.DATABASE]            # warning/critical per profile or per server: risk,
    load_average = { warning = 60, critical = 80 }   # the pages and /metrics use them
    [thresholds.server."web-01"]
    mem_used_pct = { warning = 90, critical = 97 }

    [[rules]]
    name = "ArgusCriticalBreachLikely"
    when = { p_critical = 0.8 }     # or p_warning = x, level = "warning", abnormal = true, climb_within = "2h"
    resolve = { p_critical = 0.5 }  # optional: resolved when below this (default: the firing value)
    now_at_least = 0.75             # optional, per-metric rules: and the metric is at 75 % of critical now
    for = "15min"                   # held this long in fleet time (or for_cycles = 3) before firing
    resolve_for = "15min"           # and this long below before resolving
    metrics = ["mem_used_pct"]      # optional filters: metrics, profiles, servers (globs)
    severity = "critical"
    labels = { team = "sre" }
    summary = "{server}: {metric} likely critical ..."   # fields: see SUMMARY_FIELDS

    [[silences]]                    # matched alerts are tracked but not sent
    server = "db-*"
    until = "2026-12-31T00:00:00Z"

``AlertBook`` is the state: each alert is deduplicated by (rule, server, metric), goes pending ->
firing -> resolved, with its start, end, predicted breach and (when one happened) the actual
breach, so its lead time is known. Time is fleet time (the forecast's ``as_of``), so a replay in
accelerated time holds and resolves alerts as the live service would.

Pure: no network and no files but the rules file; sending is ``argus_core.live.sinks``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import secrets
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.data import schema
from argus_core.data.files import read_toml
from argus_core.errors import SettingsError
from argus_core.fleet import risk

CONDITIONS = ("p_critical", "p_warning", "level", "abnormal", "climb_within")
PER_METRIC = ("p_critical", "p_warning", "climb_within")  # one alert per (server, metric)
SERVER_WIDE = ("level", "abnormal")  # one alert per server, not per metric
SUMMARY_FIELDS = ("rule", "server", "profile", "metric", "p_critical", "p_warning", "breach_p50", "breach_p90",
                  "lead", "level", "value_now", "warning", "critical", "why", "climb_per_h", "hours_to_critical")
DEFAULT_SUMMARY = {
    "p_critical": "{server}: {metric} is likely to cross {critical:g} ({p_critical:.0%}) by {breach_p50} at p50, "
                  "{breach_p90} at p90; {why}",
    "p_warning": "{server}: {metric} is likely to cross {warning:g} ({p_warning:.0%}) within the horizon; {why}",
    "level": "{server} is at {level}: {metric} {p_critical:.0%} likely critical, p50 breach {breach_p50}; {why}",
    "abnormal": "{server} is behaving abnormally now; {why}",
    "climb_within": "{server}: {metric} is at {value_now:g} and climbing {climb_per_h:.3g} an hour: at that rate it "
                    "reaches {critical:g} in {hours_to_critical:.1f} h; {why}",
}
RECENT = pd.Timedelta("24h")  # resolved alerts are kept (and shown) this long


@dataclass(frozen=True)
class Rule:
    name: str
    condition: str  # one of CONDITIONS
    value: float | str | bool
    resolve_value: float | str | bool
    hold: pd.Timedelta = pd.Timedelta(0)
    hold_cycles: int = 1
    resolve_hold: pd.Timedelta = pd.Timedelta(0)
    resolve_cycles: int = 1
    metrics: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    servers: tuple[str, ...] = ()
    severity: str = "warning"
    labels: dict = field(default_factory=dict)
    summary: str = ""
    now_at_least: float | None = None  # per-metric rules: and the latest value is this share of critical

    def applies(self, server: str, profile: str | None, metric: str) -> bool:
        return (_matches(self.metrics, metric) and _matches(self.profiles, profile or "")
                and _matches(self.servers, server))


@dataclass(frozen=True)
class Silence:
    rule: str = "*"
    server: str = "*"
    metric: str = "*"
    start: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    comment: str = ""
    id: str = ""  # set on silences added through the service, which can be expired by it

    def covers(self, alert: Alert, at: pd.Timestamp) -> bool:
        if self.start is not None and at < self.start or self.until is not None and at >= self.until:
            return False
        return (fnmatch.fnmatchcase(alert.rule, self.rule) and fnmatch.fnmatchcase(alert.server, self.server)
                and fnmatch.fnmatchcase(alert.metric or "", self.metric))


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    profile_thresholds: dict = field(default_factory=dict)  # profile -> metric -> Threshold
    server_thresholds: dict = field(default_factory=dict)  # server -> metric -> Threshold
    silences: tuple[Silence, ...] = ()
    source: str = "(none)"

    def overrides(self, profiles: dict[str, str], metrics) -> risk.Overrides:
        """(server, metric) -> Threshold for every server whose profile or name has its own."""
        metrics = set(metrics)
        out: risk.Overrides = {}
        if self.profile_thresholds:
            for server, profile in profiles.items():
                for metric, limit in self.profile_thresholds.get(profile, {}).items():
                    if metric in metrics:
                        out[(server, metric)] = limit
        for server, limits in self.server_thresholds.items():
            for metric, limit in limits.items():
                if metric in metrics:
                    out[(server, metric)] = limit
        return out


def _matches(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)


# --- the rules file -----------------------------------------------------------------------------------

def load_rules(path: str | Path | None) -> RuleSet:
    """A rules file parsed and checked; SettingsError naming every problem (nothing is half-loaded)."""
    if path is None:
        return RuleSet()
    return parse_rules(read_toml(Path(path), "rules file", "start from deploy/alerts.toml"), str(path))


def parse_rules(raw: dict, source: str = "rules") -> RuleSet:
    problems: list[str] = []
    unknown = set(raw) - {"defaults", "thresholds", "rules", "silences"}
    if unknown:
        problems.append(f"unknown section(s) {', '.join(sorted(unknown))}; use defaults, thresholds, rules, silences")
    defaults = raw.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("[defaults] must be a table")
        defaults = {}
    thresholds = raw.get("thresholds", {})
    profile_limits = _limits(thresholds.get("profile", {}) if isinstance(thresholds, dict) else {}, "profile",
                             problems)
    server_limits = _limits(thresholds.get("server", {}) if isinstance(thresholds, dict) else {}, "server", problems)
    if isinstance(thresholds, dict) and set(thresholds) - {"profile", "server"}:
        problems.append("[thresholds] holds only [thresholds.profile.NAME] and [thresholds.server.NAME] tables")
    rules, names = [], set()
    entries = raw.get("rules", [])
    if not isinstance(entries, list):
        problems.append("rules must be an array of tables ([[rules]])")
        entries = []
    for index, entry in enumerate(entries):
        rule = _rule(entry, index, defaults, problems)
        if rule is not None:
            if rule.name in names:
                problems.append(f"rules[{index}]: the name {rule.name!r} is used twice")
            names.add(rule.name)
            rules.append(rule)
    silences = []
    for index, entry in enumerate(raw.get("silences", []) if isinstance(raw.get("silences", []), list) else []):
        silence = silence_of(entry, f"silences[{index}]", problems)
        if silence is not None:
            silences.append(silence)
    if problems:
        raise SettingsError(f"{source}: " + "; ".join(problems))
    return RuleSet(tuple(rules), profile_limits, server_limits, tuple(silences), source)


def _limits(table: dict, kind: str, problems: list[str]) -> dict:
    out: dict = {}
    if not isinstance(table, dict):
        problems.append(f"[thresholds.{kind}] must be a table")
        return out
    if kind == "profile":
        from argus_core.data.profiles import PROFILES

        for name in set(table) - set(PROFILES):
            problems.append(f"thresholds.profile.{name}: unknown profile; known: {', '.join(sorted(PROFILES))}")
    for name, metrics in table.items():
        if not isinstance(metrics, dict):
            problems.append(f"thresholds.{kind}.{name} must be a table of metric = {{ warning, critical }}")
            continue
        for metric, limit in metrics.items():
            where = f"thresholds.{kind}.{name}.{metric}"
            if not isinstance(limit, dict) or set(limit) != {"warning", "critical"}:
                problems.append(f"{where}: give {{ warning = W, critical = C }}")
                continue
            warning, critical = limit["warning"], limit["critical"]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                       for v in (warning, critical)):
                problems.append(f"{where}: warning and critical must be finite numbers")
            elif warning > critical:
                problems.append(f"{where}: warning ({warning}) is above critical ({critical})")
            else:
                out.setdefault(str(name), {})[str(metric)] = schema.Threshold(float(warning), float(critical))
    return out


RULE_KEYS = {"name", "when", "resolve", "for", "for_cycles", "resolve_for", "resolve_cycles", "metrics", "profiles",
             "servers", "severity", "labels", "summary", "now_at_least"}


def _rule(entry: dict, index: int, defaults: dict, problems: list[str]) -> Rule | None:
    where = f"rules[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{where} must be a table")
        return None
    before = len(problems)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: give it a name")
        name = f"rule{index}"
    where = f"rules[{index}] ({name})"
    unknown = set(entry) - RULE_KEYS
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(RULE_KEYS))}")
    condition, value = _condition(entry.get("when"), f"{where}.when", problems)
    resolve_value = _condition(entry.get("resolve", entry.get("when")), f"{where}.resolve", problems,
                               expected=condition)[1] if condition else None
    hold = _duration(entry.get("for", defaults.get("for", "0s")), f"{where}.for", problems)
    resolve_hold = _duration(entry.get("resolve_for", defaults.get("resolve_for", "0s")), f"{where}.resolve_for",
                             problems)
    cycles = {}
    for key in ("for_cycles", "resolve_cycles"):
        count = entry.get(key, defaults.get(key, 1))
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            problems.append(f"{where}.{key} must be a whole number >= 1, not {count!r}")
            count = 1
        cycles[key] = count
    filters = {}
    for key in ("metrics", "profiles", "servers"):
        got = entry.get(key, [])
        if isinstance(got, str):
            got = [got]
        if not isinstance(got, list) or not all(isinstance(v, str) for v in got):
            problems.append(f"{where}.{key} must be a list of names or globs")
            got = []
        filters[key] = tuple(got)
    severity = entry.get("severity", defaults.get("severity", "warning"))
    labels = entry.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        problems.append(f"{where}.labels must be a table of strings")
        labels = {}
    summary = entry.get("summary", DEFAULT_SUMMARY.get(condition or "", ""))
    if not isinstance(summary, str):
        problems.append(f"{where}.summary must be a string")
        summary = ""
    elif condition:
        try:
            summary.format(**_example_fields())
        except (KeyError, ValueError, IndexError) as exc:
            problems.append(f"{where}.summary: {exc!r} is not a field; use {', '.join(SUMMARY_FIELDS)}")
    now_at_least = entry.get("now_at_least")
    if now_at_least is not None and (condition not in PER_METRIC or isinstance(now_at_least, bool)
                                     or not isinstance(now_at_least, int | float) or not 0 < now_at_least <= 1):
        problems.append(f"{where}.now_at_least is a share of the critical threshold in (0, 1], for p_critical, "
                        "p_warning and climb_within rules")
    if len(problems) > before or condition is None:
        return None
    return Rule(name=name, condition=condition, value=value, resolve_value=resolve_value, hold=hold,
                hold_cycles=cycles["for_cycles"], resolve_hold=resolve_hold, resolve_cycles=cycles["resolve_cycles"],
                severity=str(severity), labels=dict(labels), summary=summary,
                now_at_least=None if now_at_least is None else float(now_at_least), **filters)


def _condition(when, where: str, problems: list[str], expected: str | None = None):
    if not isinstance(when, dict) or len(when) != 1:
        problems.append(f"{where} must be one condition, e.g. {{ p_critical = 0.8 }}; one of {', '.join(CONDITIONS)}")
        return None, None
    (key, value), = when.items()
    if key not in CONDITIONS:
        problems.append(f"{where}: unknown condition {key!r}; use one of {', '.join(CONDITIONS)}")
        return None, None
    if expected is not None and key != expected:
        problems.append(f"{where} must use the same condition as when ({expected})")
        return None, None
    if key in ("p_critical", "p_warning"):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
            problems.append(f"{where}: {key} must be a probability in (0, 1], not {value!r}")
            return None, None
        return key, float(value)
    if key == "climb_within":  # a duration: the recent line reaches critical within it
        try:
            hours = pd.Timedelta(value) / pd.Timedelta("1h") if isinstance(value, str) else math.nan
        except ValueError:
            hours = math.nan
        if not hours > 0:
            problems.append(f"{where}: climb_within must be a duration such as \"2h\" or \"90min\", not {value!r}")
            return None, None
        return key, hours
    if key == "level":
        if value not in risk.LEVELS[1:]:
            problems.append(f"{where}: level must be one of {', '.join(risk.LEVELS[1:])}, not {value!r}")
            return None, None
        return key, value
    if value is not True:
        problems.append(f"{where}: write abnormal = true")
        return None, None
    return key, True


def _duration(text, where: str, problems: list[str]) -> pd.Timedelta:
    if text in ("0", "0s", 0):
        return pd.Timedelta(0)
    try:
        return schema.parse_duration(str(text))
    except SettingsError as exc:
        problems.append(f"{where}: {exc}")
        return pd.Timedelta(0)


MAX_COMMENT = 500  # characters of a silence's comment
MAX_PATTERN = 200  # characters of a silence's rule, server or metric pattern


def silence_of(entry, where: str, problems: list[str], now: pd.Timestamp | None = None) -> Silence | None:
    """A silence from a rules-file table or a request. With ``now`` (a new silence sent to the
    service) it must end after ``now`` and after its start: a silence that never covers anything
    is refused rather than kept."""
    if not isinstance(entry, dict):
        problems.append(f"{where} must be a table")
        return None
    unknown = set(entry) - {"rule", "server", "metric", "start", "until", "comment", "id"}
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        return None
    if not any(k in entry for k in ("rule", "server", "metric")):
        problems.append(f"{where}: match at least one of rule, server, metric")
        return None
    if not all(isinstance(entry.get(k, "*"), str) for k in ("rule", "server", "metric", "comment", "id")):
        problems.append(f"{where}: rule, server, metric and comment are strings")
        return None
    for key in ("rule", "server", "metric"):
        if not entry.get(key, "*").strip() or len(entry.get(key, "*")) > MAX_PATTERN:
            problems.append(f"{where}.{key}: a pattern of 1 to {MAX_PATTERN} characters (* and ? match any)")
            return None
    if len(entry.get("comment", "")) > MAX_COMMENT:
        problems.append(f"{where}.comment: at most {MAX_COMMENT} characters, not {len(entry['comment']):,}")
        return None
    times = {}
    for key in ("start", "until"):
        if entry.get(key) is None:
            times[key] = None
            continue
        value = entry[key]
        stamp = None
        if isinstance(value, str) and value.strip():
            try:
                stamp = pd.Timestamp(value)
            except (ValueError, TypeError, OverflowError):
                stamp = None
        if stamp is None or pd.isna(stamp):
            problems.append(f"{where}.{key}: {value!r} is not a time (ISO 8601 text, e.g. 2026-12-31T00:00:00Z)")
            return None
        times[key] = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    start, until = times["start"], times["until"]
    if start is not None and until is not None and until <= start:
        problems.append(f"{where}: until ({until.isoformat()}) must be after start ({start.isoformat()})")
        return None
    if now is not None and until is not None and until <= now:
        problems.append(f"{where}.until: {until.isoformat()} has passed (the service's clock says "
                        f"{now.isoformat()}): a silence must end in the future")
        return None
    return Silence(rule=entry.get("rule", "*"), server=entry.get("server", "*"), metric=entry.get("metric", "*"),
                   start=start, until=until, comment=entry.get("comment", ""), id=entry.get("id", ""))


def _example_fields() -> dict:
    return {"rule": "r", "server": "s", "profile": "p", "metric": "m", "p_critical": 0.9, "p_warning": 0.9,
            "breach_p50": "t", "breach_p90": "t", "lead": "1h", "level": "critical", "value_now": 1.0,
            "warning": 1.0, "critical": 2.0, "why": "w", "climb_per_h": 1.0, "hours_to_critical": 1.0}


# --- alerts ---------------------------------------------------------------------------------------------

@dataclass
class Alert:
    rule: str
    server: str
    metric: str  # "" for a server-wide rule (level, abnormal)
    severity: str
    state: str = "pending"  # pending -> firing -> resolved
    pending_since: str | None = None
    pending_cycles: int = 0
    starts_at: str | None = None  # fired (fleet time)
    ends_at: str | None = None  # resolved
    clearing_since: str | None = None  # the condition's been false since
    clearing_cycles: int = 0
    predicted_breach: str | None = None  # p50 breach time when it fired
    breached_at: str | None = None  # the first actual critical breach while open
    summary: str = ""
    labels: dict = field(default_factory=dict)
    silenced: bool = False
    reason: str = ""  # why it resolved: "condition cleared", "stale: ..."

    @property
    def key(self) -> tuple[str, str, str]:
        return self.rule, self.server, self.metric

    @classmethod
    def from_dict(cls, data: dict) -> Alert:
        """From ``asdict`` (alerts.json); keys a later version added or dropped are ignored."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def lead_seconds(self) -> float | None:
        """Actual breach (or the predicted one) minus the firing time."""
        if self.starts_at is None:
            return None
        breach = self.breached_at or self.predicted_breach
        if breach is None:
            return None
        return (pd.Timestamp(breach) - pd.Timestamp(self.starts_at)).total_seconds()


class AlertBook:
    """Open and recently resolved alerts; ``evaluate`` once per cycle."""

    def __init__(self, rules: RuleSet, alerts: list[Alert] | None = None) -> None:
        self.rules = rules
        self.alerts: dict[tuple[str, str, str], Alert] = {a.key: a for a in (alerts or [])}
        self.extra_silences: list[Silence] = []

    @property
    def silences(self) -> list[Silence]:
        return [*self.rules.silences, *self.extra_silences]

    def evaluate(self, at: pd.Timestamp, per_metric: pd.DataFrame, ranking: pd.DataFrame,
                 abnormal: pd.DataFrame | None = None, importance: pd.DataFrame | None = None,
                 profiles: dict[str, str] | None = None, stale: dict[str, str] | None = None) -> list[Alert]:
        """Advance every alert to fleet time ``at``; returns the alerts that changed state to firing
        or resolved in this call (what a webhook announces)."""
        profiles, stale = profiles or {}, stale or {}
        changed: list[Alert] = []
        true_now = self._conditions(per_metric, ranking, abnormal, profiles)
        why = _reasons(importance, abnormal)
        breaching = set()  # (server, metric) critical now; (server, "") for a server-wide alert
        if len(per_metric) and "breaching_now" in per_metric:
            hit = per_metric[per_metric["breaching_now"] == "critical"]
            breaching = set(zip(hit[schema.SERVER].astype(str), hit["metric"], strict=True))
            breaching |= {(server, "") for server, _ in breaching}
        stamp = at.isoformat()
        for key, (rule, fields) in true_now.items():
            if key[1] in stale:
                continue
            alert = self.alerts.get(key)
            if alert is None or alert.state == "resolved":
                alert = Alert(rule=rule.name, server=key[1], metric=key[2], severity=rule.severity,
                              pending_since=stamp, labels=dict(rule.labels))
                self.alerts[key] = alert
            alert.clearing_since, alert.clearing_cycles = None, 0
            alert.pending_cycles += 1
            fields["why"] = why.get(key[1], "no one input stands out")
            alert.summary = _summary(rule, fields)
            if alert.state == "pending" and alert.pending_cycles >= rule.hold_cycles \
                    and at - pd.Timestamp(alert.pending_since) >= rule.hold:
                alert.state, alert.starts_at = "firing", stamp
                alert.predicted_breach = fields.get("breach_at")
                changed.append(alert)
        now = _Now(per_metric, ranking, abnormal)
        for key, alert in list(self.alerts.items()):
            rule = self._rule(alert.rule)
            if alert.state != "resolved" and (alert.server, alert.metric) in breaching:
                alert.breached_at = alert.breached_at or stamp
            if alert.state == "resolved":
                if at - pd.Timestamp(alert.ends_at) > RECENT:
                    del self.alerts[key]
                continue
            if alert.server in stale:
                self._close(alert, stamp, f"stale: {stale[alert.server]}", changed)
                continue
            if key in true_now:
                continue
            if rule is None:  # its rule left the file
                self._close(alert, stamp, "rule removed", changed)
                continue
            if alert.state == "pending":  # never fired: forget it quietly
                del self.alerts[key]
                continue
            if not self._still_on(rule, alert, now):
                alert.clearing_since = alert.clearing_since or stamp
                alert.clearing_cycles += 1
                if alert.clearing_cycles >= rule.resolve_cycles \
                        and at - pd.Timestamp(alert.clearing_since) >= rule.resolve_hold:
                    self._close(alert, stamp, "condition cleared", changed)
        for alert in self.alerts.values():
            alert.silenced = any(s.covers(alert, at) for s in self.silences)
        return changed

    def _close(self, alert: Alert, stamp: str, reason: str, changed: list[Alert]) -> None:
        was_firing = alert.state == "firing"
        alert.state, alert.ends_at, alert.reason = "resolved", stamp, reason
        if was_firing:
            changed.append(alert)

    def _rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules.rules if r.name == name), None)

    def _conditions(self, per_metric, ranking, abnormal, profiles) -> dict:
        """(rule, server, metric) -> (rule, summary fields) for every condition true now."""
        out = {}
        if not self.rules.rules:
            return out
        rows = per_metric.to_dict("records") if len(per_metric) else []
        servers = ranking.to_dict("records") if len(ranking) else []
        flagged = _abnormal_servers(abnormal)
        for rule in self.rules.rules:
            if rule.condition in PER_METRIC:
                for row in rows:
                    server = str(row[schema.SERVER])
                    if _holds(rule, row, rule.value) and rule.applies(server, profiles.get(server), row["metric"]) \
                            and (rule.now_at_least is None or row.get("value_now", 0.0) >= rule.now_at_least
                                 * row.get("critical", float("inf"))):
                        out[(rule.name, server, row["metric"])] = (rule, _fields(rule, row, profiles))
            elif rule.condition == "level":
                for row in servers:
                    server = str(row[schema.SERVER])
                    if risk.LEVELS.index(row["level"]) >= risk.LEVELS.index(rule.value) \
                            and rule.applies(server, profiles.get(server), row.get("driver", "")):
                        out[(rule.name, server, "")] = (rule, _fields(rule, {**row, "metric": row.get("driver", "")},
                                                                      profiles))
            else:
                for server in flagged:
                    if rule.applies(server, profiles.get(server), ""):
                        out[(rule.name, server, "")] = (rule, _fields(rule, {schema.SERVER: server, "metric": ""},
                                                                      profiles))
        return out

    @staticmethod
    def _still_on(rule: Rule, alert: Alert, now: _Now) -> bool:
        """Whether a firing alert whose condition is false has not yet crossed its resolve value."""
        if rule.condition in PER_METRIC:
            found = now.probabilities.get((alert.server, alert.metric))
            return found is not None and _holds(rule, found, float(rule.resolve_value))
        if rule.condition == "level":
            level = now.levels.get(alert.server)
            return level is not None and risk.LEVELS.index(level) >= risk.LEVELS.index(rule.resolve_value)
        return alert.server in now.abnormal

    # --- reads and persistence ---------------------------------------------------------------------------
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts.values() if a.state == "firing"]

    def to_json(self) -> dict:
        return {"alerts": [asdict(a) for a in self.alerts.values()],
                "silences": [silence_json(s) for s in self.extra_silences]}

    @classmethod
    def from_json(cls, rules: RuleSet, data: dict) -> AlertBook:
        book = cls(rules, [Alert.from_dict(a) for a in data.get("alerts", [])])
        problems: list[str] = []
        book.extra_silences = [replace(s, id=s.id or secrets.token_hex(6))  # saved before silences had ids
                               for s in (silence_of(e, "silence", problems) for e in data.get("silences", []))
                               if s is not None]
        return book


class _Now:
    """One cycle's findings looked up by key, built once per ``evaluate`` (not once per alert)."""

    def __init__(self, per_metric: pd.DataFrame, ranking: pd.DataFrame, abnormal: pd.DataFrame | None) -> None:
        self._per_metric, self._ranking = per_metric, ranking
        self.abnormal = _abnormal_servers(abnormal)

    @functools.cached_property
    def probabilities(self) -> dict[tuple[str, str], dict]:
        rows = self._per_metric
        if not len(rows):
            return {}
        keys = zip(rows[schema.SERVER].astype(str), rows["metric"], strict=True)
        columns = [c for c in ("p_critical", "p_warning", "hours_to_critical") if c in rows.columns]
        return dict(zip(keys, rows[columns].to_dict("records"), strict=True))

    @functools.cached_property
    def levels(self) -> dict[str, str]:
        rows = self._ranking
        return dict(zip(rows[schema.SERVER].astype(str), rows["level"], strict=True)) if len(rows) else {}


def alerts_frame(data: dict | None) -> pd.DataFrame:
    """The alerts of an ``AlertBook.to_json`` as a frame for the pages, with the lead time."""
    columns = ["rule", "server_name", "metric", "severity", "state", "starts_at", "ends_at", "lead", "summary",
               "silenced", "reason"]
    alerts = [a for a in (data or {}).get("alerts", []) if a.get("state") in ("firing", "resolved")]
    if not alerts:
        return pd.DataFrame(columns=columns)
    rows, leads = [], []
    for a in alerts:
        alert = Alert.from_dict(a)
        lead = alert.lead_seconds()
        leads.append(np.nan if lead is None else float(lead))
        rows.append({"rule": alert.rule, "server_name": alert.server, "metric": alert.metric,
                     "severity": alert.severity, "state": alert.state, "starts_at": pd.Timestamp(alert.starts_at),
                     "ends_at": pd.Timestamp(alert.ends_at) if alert.ends_at else pd.NaT, "summary": alert.summary,
                     "silenced": alert.silenced, "reason": alert.reason})
    frame = pd.DataFrame(rows, columns=columns)
    # a timedelta column even when no alert has a lead (all NaT read as datetimes: the API's 500)
    frame["lead"] = pd.to_timedelta(np.asarray(leads, dtype=np.float64), unit="s")
    return frame.sort_values(["state", "starts_at"], ascending=[True, False], kind="stable").reset_index(drop=True)


def silence_json(s: Silence) -> dict:
    return {**({"id": s.id} if s.id else {}), "rule": s.rule, "server": s.server, "metric": s.metric,
            "comment": s.comment,
            **({"start": s.start.isoformat()} if s.start is not None else {}),
            **({"until": s.until.isoformat()} if s.until is not None else {})}


def _abnormal_servers(abnormal: pd.DataFrame | None) -> set[str]:
    if abnormal is None or not len(abnormal) or "abnormal" not in abnormal:
        return set()
    return set(abnormal.loc[abnormal["abnormal"].astype(bool), schema.SERVER].astype(str))


def _time(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "none in the horizon"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")


def _holds(rule: Rule, row: dict, value: float) -> bool:
    """A per-metric rule's condition on one (server, metric) row: a probability at least ``value``,
    or the recent climb reaching critical within ``value`` hours."""
    if rule.condition == "climb_within":
        hours = row.get("hours_to_critical")
        return hours is not None and not pd.isna(hours) and float(hours) <= value
    return row[rule.condition] >= value


def _fields(rule: Rule, row: dict, profiles: dict[str, str]) -> dict:
    server = str(row[schema.SERVER])
    breach = row.get("breach_p50")
    if breach is None or pd.isna(breach):
        breach = row.get("warning_p50") if rule.condition == "p_warning" else None
    breach_at = None if breach is None or pd.isna(breach) else pd.Timestamp(breach).isoformat()

    def number(key: str) -> float:
        value = row.get(key)
        return float("nan") if value is None or pd.isna(value) else float(value)

    return {"rule": rule.name, "server": server, "profile": profiles.get(server, ""), "metric": row.get("metric", ""),
            "p_critical": number("p_critical"), "p_warning": number("p_warning"),
            "breach_p50": _time(row.get("breach_p50")), "breach_p90": _time(row.get("breach_p90")),
            "level": row.get("level", ""), "value_now": number("value_now"), "warning": number("warning"),
            "critical": number("critical"), "lead": "", "breach_at": breach_at,
            "climb_per_h": number("climb_per_h"), "hours_to_critical": number("hours_to_critical")}


def _summary(rule: Rule, fields: dict) -> str:
    try:
        return rule.summary.format(**fields)
    except (KeyError, ValueError, IndexError):
        return f"{fields['server']}: {rule.name} ({fields.get('metric') or 'server'})"


def _reasons(importance: pd.DataFrame | None, abnormal: pd.DataFrame | None) -> dict[str, str]:
    """server -> "why": the forecast's most important inputs and the metrics off now."""
    out: dict[str, list[str]] = {}
    if importance is not None and len(importance):
        top = importance.sort_values("importance", ascending=False).groupby(schema.SERVER, observed=True).head(3)
        for server, rows in top.groupby(schema.SERVER, observed=True):
            out.setdefault(str(server), []).append("the forecast leans on " + ", ".join(rows["variable"].astype(str)))
    if abnormal is not None and len(abnormal) and "drivers" in abnormal:
        for row in abnormal[abnormal["abnormal"].astype(bool)].itertuples():
            out.setdefault(str(getattr(row, schema.SERVER)), []).append(f"abnormal now in {row.drivers}")
    return {server: "; ".join(parts) for server, parts in out.items()}

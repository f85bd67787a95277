"""Alert rules on hand-made cycles with known answers: the hold before firing, the resolve value
and its hold, deduplication, server-wide rules, stale servers, silences, per-profile and
per-server thresholds in risk; the rules file's errors; a dead sink that never stops a cycle;
and the CLI's messages for bad Prometheus and rules settings."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from argus_core.cli.main import main
from argus_core.data import schema
from argus_core.errors import SettingsError
from argus_core.fleet import alerting, risk
from argus_core.live.sinks import AlertmanagerSink, Dispatcher, WebhookSink

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2026-01-05T00:00Z")
STEP = pd.Timedelta("5min")


def cycle(p: float, server: str = "db1", metric: str = "mem_used_pct", level: str = "healthy",
          breaching: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    per_metric = pd.DataFrame({schema.SERVER: [server], "metric": [metric], "p_critical": [p], "p_warning": [p],
                               "breach_p50": [T0 + pd.Timedelta("2h")], "breach_p90": [T0 + pd.Timedelta("1h")],
                               "value_now": [70.0], "warning": [85.0], "critical": [95.0],
                               "breaching_now": [breaching]})
    ranking = pd.DataFrame({schema.SERVER: [server], "level": [level], "driver": [metric]})
    return per_metric, ranking


def run(book: alerting.AlertBook, series: list[float], **kw) -> list[list[str]]:
    """The state of every alert after each cycle."""
    states = []
    for i, p in enumerate(series):
        book.evaluate(T0 + STEP * i, *cycle(p, **kw))
        states.append([a.state for a in book.alerts.values()])
    return states


def test_hold_resolve_value_and_resolve_hold_have_known_answers():
    rules = alerting.parse_rules({"rules": [{"name": "Leak", "when": {"p_critical": 0.8},
                                             "resolve": {"p_critical": 0.5}, "for": "10min", "resolve_for": "10min"}]})
    book = alerting.AlertBook(rules)
    states = run(book, [0.9, 0.9, 0.9, 0.6, 0.4, 0.9, 0.4, 0.4, 0.4, 0.9])
    # pending at 0 and 5 min, fires at 10; 0.6 is above the resolve value (stays); 0.4 starts clearing,
    # 0.9 interrupts it; three cycles under 0.5 (10 min) resolve it; then a new alert starts pending
    assert states == [["pending"], ["pending"], ["firing"], ["firing"], ["firing"], ["firing"], ["firing"],
                      ["firing"], ["resolved"], ["pending"]]


def test_a_blip_shorter_than_the_hold_never_fires_and_cycles_count_too():
    rules = alerting.parse_rules({"rules": [{"name": "Leak", "when": {"p_critical": 0.8}, "for_cycles": 3}]})
    book = alerting.AlertBook(rules)
    assert run(book, [0.9, 0.9, 0.1, 0.9, 0.9, 0.9]) == [["pending"], ["pending"], [], ["pending"], ["pending"],
                                                        ["firing"]]


def test_one_alert_per_rule_server_metric_with_lead_time_and_summary():
    rules = alerting.parse_rules({"rules": [{"name": "Leak", "when": {"p_critical": 0.5}}]})
    book = alerting.AlertBook(rules)
    fired = book.evaluate(T0, *cycle(0.9))
    assert [a.state for a in fired] == ["firing"]
    for i in range(1, 5):
        assert book.evaluate(T0 + STEP * i, *cycle(0.9)) == []  # still one alert, not one per cycle
    alert = book.firing()[0]
    assert alert.lead_seconds() == 7200  # the p50 breach two hours after it fired
    assert "db1" in alert.summary and "mem_used_pct" in alert.summary and "p90" in alert.summary
    book.evaluate(T0 + STEP * 5, *cycle(0.9, breaching="critical"))
    assert alert.breached_at == (T0 + STEP * 5).isoformat() and alert.lead_seconds() == 25 * 60  # the actual one


def test_server_wide_rules_and_stale_servers_resolve_quietly():
    rules = alerting.parse_rules({"rules": [{"name": "Hot", "when": {"level": "warning"}},
                                            {"name": "Odd", "when": {"abnormal": True}}]})
    book = alerting.AlertBook(rules)
    per_metric, ranking = cycle(0.1, level="critical")
    abnormal = pd.DataFrame({schema.SERVER: ["db1"], "abnormal": [True], "drivers": ["mem_used_pct"]})
    fired = book.evaluate(T0, per_metric, ranking, abnormal)
    assert sorted((a.rule, a.metric) for a in fired) == [("Hot", ""), ("Odd", "")]
    assert "abnormal now in mem_used_pct" in next(a for a in fired if a.rule == "Odd").summary
    gone = book.evaluate(T0 + STEP, per_metric, ranking, abnormal, stale={"db1": "stale: no sample since ..."})
    assert sorted(a.state for a in gone) == ["resolved", "resolved"] and all(a.reason.startswith("stale")
                                                                            for a in gone)
    assert book.evaluate(T0 + STEP * 2, per_metric, ranking, abnormal, stale={"db1": "stale"}) == []  # no storm


def test_silences_keep_alerts_tracked_but_marked():
    rules = alerting.parse_rules({"rules": [{"name": "Leak", "when": {"p_critical": 0.5}}],
                                  "silences": [{"server": "db*", "until": "2026-01-05T00:10:00Z"}]})
    book = alerting.AlertBook(rules)
    book.evaluate(T0, *cycle(0.9))
    assert book.firing()[0].silenced
    book.evaluate(T0 + pd.Timedelta("15min"), *cycle(0.9))
    assert not book.firing()[0].silenced  # the silence ended


def test_thresholds_per_profile_and_server_reach_risk():
    rules = alerting.parse_rules({"thresholds": {
        "profile": {"ML_COMPUTE": {"load_average": {"warning": 60, "critical": 80}}},
        "server": {"web1": {"load_average": {"warning": 5, "critical": 10}}}}})
    overrides = rules.overrides({"ml1": "ML_COMPUTE", "web1": "WEB_API", "db1": "DATABASE"}, ["load_average"])
    stamps = pd.date_range(T0, periods=4, freq="5min")
    quantiles = pd.concat([pd.DataFrame({schema.SERVER: s, "metric": "load_average", schema.TIMESTAMP: stamps,
                                         "q10": 40.0, "q50": 45.0, "q90": 50.0}) for s in ("ml1", "web1", "db1")])
    scored = risk.metric_risk(quantiles, {"load_average": schema.Threshold(30.0, 40.0)}, overrides=overrides)
    p = scored.set_index(schema.SERVER)
    assert p.loc["ml1", "p_critical"] < 0.01 and p.loc["ml1", "critical"] == 80  # idle on a 96-core host
    assert p.loc["db1", "p_critical"] >= 0.9 and p.loc["db1", "critical"] == 40  # the model's own
    assert p.loc["web1", "p_critical"] > 0.99 and p.loc["web1", "warning"] == 5


@pytest.mark.parametrize("raw, message", [
    ({"rules": [{"name": "x", "when": {"p_crit": 0.8}}]}, "unknown condition 'p_crit'"),
    ({"rules": [{"name": "x", "when": {"p_critical": 1.5}}]}, "probability in (0, 1]"),
    ({"rules": [{"name": "x", "when": {"level": "panic"}}]}, "level must be one of watch, warning, critical"),
    ({"rules": [{"name": "x", "when": {"p_critical": 0.8}, "resolve": {"level": "watch"}}]}, "same condition"),
    ({"rules": [{"name": "x", "when": {"p_critical": 0.8}, "for": "5"}]}, "needs a number and a unit"),
    ({"rules": [{"name": "x", "when": {"p_critical": 0.8}, "summary": "{nope}"}]}, "is not a field"),
    ({"rules": [{"name": "x", "when": {"abnormal": True}}, {"name": "x", "when": {"abnormal": True}}]}, "used twice"),
    ({"thresholds": {"profile": {"DB": {}}}}, "unknown profile"),
    ({"thresholds": {"server": {"a": {"mem_used_pct": {"warning": 99, "critical": 90}}}}}, "above critical"),
    ({"silences": [{"until": "tomorrow"}]}, "match at least one of rule, server, metric"),
    ({"alerts": []}, "unknown section"),
    ({"rules": [{"name": "x", "when": {"climb_within": "soon"}}]}, "climb_within must be a duration"),
    ({"rules": [{"name": "x", "when": {"climb_within": 2}}]}, "climb_within must be a duration"),
])
def test_bad_rules_are_named(raw, message):
    with pytest.raises(SettingsError) as caught:
        alerting.parse_rules(raw)
    assert message in str(caught.value)


def test_the_shipped_rules_file_loads():
    rules = alerting.load_rules(ROOT / "deploy" / "alerts.toml")
    assert {r.name for r in rules.rules} == {"ArgusServerAtRisk", "ArgusFastClimb", "ArgusCriticalBreachLikely",
                                             "ArgusServerAbnormal"}
    assert {r.name: r.hold for r in rules.rules} == {"ArgusServerAtRisk": pd.Timedelta("30min"),
                                                     "ArgusFastClimb": pd.Timedelta("15min"),
                                                     "ArgusCriticalBreachLikely": pd.Timedelta("15min"),
                                                     "ArgusServerAbnormal": pd.Timedelta("15min")}


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there any more


def test_a_dead_sink_is_counted_and_never_raises():
    rules = alerting.parse_rules({"rules": [{"name": "Leak", "when": {"p_critical": 0.5}}]})
    book = alerting.AlertBook(rules)
    changed = book.evaluate(T0, *cycle(0.9))
    webhook = WebhookSink(dead_url() + "/hook", timeout=1.0)
    dispatcher = Dispatcher([AlertmanagerSink(dead_url(), pd.Timedelta("5min"), timeout=1.0), webhook])
    dispatcher.deliver(book.firing(), changed, T0)  # no exception reaches the cycle
    assert dispatcher.failures == {"alertmanager": 1, "webhook": 1}
    assert len(webhook.pending) == 1  # the message waits for the next try
    payload = AlertmanagerSink("http://x", pd.Timedelta("5min")).payload(book.firing(), T0)
    assert payload[0]["labels"] == {"alertname": "Leak", "server": "db1", "severity": "warning", "source": "argus",
                                    "metric": "mem_used_pct"}
    assert pd.Timestamp(payload[0]["endsAt"]) == T0 + pd.Timedelta("20min")  # four cycles: Alertmanager ends it alone


@pytest.mark.parametrize("args, message", [
    (["--source", "prometheus"], "needs --prometheus-url"),
    (["--source", "prometheus", "--prometheus-url", "prometheus:9090"], "must be http(s)://"),
    (["--rules", "missing.toml"], "rules file missing.toml not found"),
    (["--alertmanager-url", "alertmanager:9093"], "must start with http://"),
])
def test_serve_refuses_bad_prometheus_and_alert_settings(args, message, tmp_path, capsys):
    from argus_core.data import store
    from argus_core.data.simulate import SimConfig, simulate_fleet

    dataset = tmp_path / "live"
    store.write_dataset(dataset, simulate_fleet(SimConfig(servers=2, hours=2, seed=1)).frame, kind="simulated")
    assert main(["serve", "--dataset", str(dataset), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_serve_says_when_prometheus_is_unreachable(tmp_path, capsys):
    assert main(["serve", "--dataset", str(tmp_path / "new"), "--source", "prometheus", "--prometheus-url",
                 dead_url(), "--backfill", "1h"]) == 1
    err = capsys.readouterr().err
    assert "unreachable" in err and "Traceback" not in err and not (tmp_path / "new").exists()


def test_now_at_least_guards_a_forecast_rule_with_the_current_level():
    rules = alerting.parse_rules({"rules": [{"name": "Leak", "when": {"p_critical": 0.5}, "now_at_least": 0.8}]})
    book = alerting.AlertBook(rules)
    far, ranking = cycle(0.9)  # value_now 70 is under 0.8 x 95 = 76
    assert book.evaluate(T0, far, ranking) == []
    near = far.assign(value_now=80.0)
    assert [a.state for a in book.evaluate(T0 + STEP, near, ranking)] == ["firing"]
    with pytest.raises(SettingsError, match="now_at_least"):
        alerting.parse_rules({"rules": [{"name": "x", "when": {"level": "watch"}, "now_at_least": 0.5}]})


def test_the_recent_climb_and_when_its_line_reaches_critical_have_known_answers():
    """A server climbing 12 units an hour from 40 (its line at 52 now, critical 95): 3.58 h to go;
    one falling never gets there; one over critical is there now; a server with too little of the
    last hour gets no line."""
    stamps = T0 + STEP * pd.RangeIndex(24)
    rows = [pd.DataFrame({schema.SERVER: name, schema.TIMESTAMP: stamps, "mem_used_pct": values})
            for name, values in (("up", 40 + 1.0 * pd.RangeIndex(24)), ("down", 90 - 0.5 * pd.RangeIndex(24)),
                                 ("over", [97.0] * 24))]
    rows.append(pd.DataFrame({schema.SERVER: "young", schema.TIMESTAMP: stamps[-3:], "mem_used_pct": [1.0, 2, 3]}))
    climb = risk.recent_climb(pd.concat(rows, ignore_index=True), ["mem_used_pct"], STEP).set_index(schema.SERVER)
    assert climb.loc["up", "climb_per_h"] == pytest.approx(12.0) and climb.loc["up", "line_now"] == pytest.approx(63.0)
    assert climb.loc["down", "climb_per_h"] == pytest.approx(-6.0) and "young" not in climb.index
    per_metric = pd.DataFrame({schema.SERVER: ["up", "down", "over"], "metric": "mem_used_pct",
                               "warning": 85.0, "critical": 95.0})
    hours = risk.with_climb(per_metric, climb.reset_index()).set_index(schema.SERVER)["hours_to_critical"]
    assert hours["up"] == pytest.approx((95 - 63) / 12) and hours["down"] == float("inf") and hours["over"] == 0


def test_a_climb_rule_fires_when_the_line_reaches_critical_in_time_and_the_level_is_high_enough():
    rules = alerting.parse_rules({"rules": [{"name": "FastClimb", "when": {"climb_within": "2h"},
                                             "now_at_least": 0.6, "for": "10min"}]})
    assert rules.rules[0].value == 2.0 and rules.rules[0].resolve_value == 2.0
    book = alerting.AlertBook(rules)
    per_metric, ranking = cycle(0.0)  # value_now 70, critical 95: at 0.74 x critical
    states = []
    for i, hours in enumerate([5.0, 1.5, 1.2, 1.0, 3.0, 4.0, 4.0]):
        book.evaluate(T0 + STEP * i, per_metric.assign(hours_to_critical=hours, climb_per_h=20.0), ranking)
        states.append([a.state for a in book.alerts.values()])
    assert states == [[], ["pending"], ["pending"], ["firing"], ["resolved"], ["resolved"], ["resolved"]]
    [alert] = book.alerts.values()
    assert "climbing 20 an hour" in alert.summary and "reaches 95 in 1.0 h" in alert.summary
    low = alerting.AlertBook(rules)  # under 0.6 x critical: a climb from idle is not yet a threat
    for i in range(4):
        low.evaluate(T0 + STEP * i, per_metric.assign(value_now=50.0, hours_to_critical=1.0), ranking)
    assert not low.alerts


def test_alerts_with_no_lead_time_still_read_as_a_timedelta_column():
    """The API's alerts answered 500 for minutes while only alerts without a breach time fired
    (abnormal-now alerts): a column of NaT was read as datetimes."""
    book = {"alerts": [{"rule": "ArgusServerAbnormal", "server": "web-1", "metric": "", "severity": "warning",
                        "state": "firing", "starts_at": "2026-01-01T00:00:00+00:00", "summary": "abnormal"}]}
    frame = alerting.alerts_frame(book)
    assert str(frame["lead"].dtype).startswith("timedelta64")
    assert pd.to_timedelta(frame["lead"]).dt.total_seconds().isna().all()

"""Model quality: how good the forecasts are on data the model never trained on, beside simple
alternatives (the backtest saved with each model), and the champion against the latest candidate."""

import pandas as pd
import streamlit as st

import ui
from argus_core.model import registry
from argus_core.views import charts, quality
from ui import training

GREEN = "#c8e6c9"


def highlight(marks):
    """Styler colours for a frame of booleans (True: the best of its row)."""
    return marks.map(lambda best: f"background-color: {GREEN}" if best else "")


def styled_board(frame):
    """The scoreboard (figures as rows, methods as columns) with each figure's best method marked
    and one precision throughout (the series count as a whole number)."""
    marks = quality.best_cells(frame, quality.LOWER_IS_BETTER)
    text = frame.astype(object)
    if "series" in text.index:
        text.loc["series"] = [int(v) if pd.notna(v) else "" for v in frame.loc["series"]]
    return text.style.apply(lambda _: highlight(marks), axis=None).format(
        lambda v: f"{v:,.3f}" if isinstance(v, float) else str(v))


def table_or_note(frame: pd.DataFrame, key: str, caption: str, empty: str, formats: dict[str, str]) -> None:
    """A board with its caption, or what to do when the backtest has none."""
    if not len(frame):
        st.info(empty)
        return
    st.caption(caption)
    st.dataframe(frame, hide_index=True, key=key,
                 column_config={c: st.column_config.NumberColumn(format=f) for c, f in formats.items()})


st.title("Model quality")
with ui.guard("model quality"):
    selection = ui.current()
    models = selection.models
    entries = registry.read(models)
    champion = entries.get("champion")
    registered = sorted(entries.get("models", {}), reverse=True)
    if not registered:
        st.info("No model yet. Train one with `python -m argus_core train --dataset DIR --holdout 0.3`, then "
                "score it with `python -m argus_core backtest --dataset DIR --model ID`.")
        st.stop()
    scored = [m for m in registered if ui.backtest_of(models, m) is not None]
    if not scored:
        st.info("No model has a backtest yet. Run `python -m argus_core backtest --dataset DIR --model ID` "
                "(train with `--holdout 0.3` so that the end of every series stays unseen).")
        st.stop()
    preferred = selection.model_id or champion
    model_id = st.selectbox("Model", scored, index=scored.index(preferred) if preferred in scored else 0,
                            format_func=lambda m: f"{m} (champion)" if m == champion else m, key="quality-model")
    result = ui.backtest_of(models, model_id)
    summary, forecasts = result.summary, result.forecasts
    st.caption(quality.caption(model_id, summary))

    st.subheader("Scoreboard")
    st.dataframe(styled_board(quality.board(summary)), key="quality-overall")
    st.caption("vs seasonal naive: each series' MASE over seasonal naive's, geometric mean over series (below 1 "
               "beats 'same time yesterday'); the best method of each figure is highlighted.")
    if note := quality.outlier_note(summary):
        st.warning(note, icon=":material/troubleshoot:")
    paired = summary.get("classical_origins")
    if paired:  # the classical model was fitted at the last origins of each series only
        st.caption(f"On the last {paired['per_series']} origin(s) of each series ({paired['origins']} origins), "
                   f"where {paired['model']} was fitted: every model on those origins (the board above leaves "
                   f"{paired['model']} out, as it did not see the rest; `backtest --classical-origins N` fits more).")
        st.dataframe(styled_board(quality.board({"overall": paired["overall"]})), key="quality-classical")
    by = st.radio("Break down by", list(quality.BREAKDOWNS), horizontal=True, key="quality-by")
    st.caption(f"Mean MASE per {by}; the best model of each row is highlighted (none where every model ties, "
               "as on a series that never moves).")
    rows = quality.breakdown(summary, by)
    st.dataframe(rows.style.apply(lambda _: highlight(quality.best_cells(rows)), axis=None).format(precision=3),
                 key="quality-breakdown")

    st.subheader("Continuity")
    continuity = quality.continuity_rows(summary)
    table_or_note(continuity, "quality-continuity",
                  "Does the forecast start where the series is? The first step's and the first hour's error "
                  "(MASE-scaled), and each against naive's, the last value, on the same points: about 1 is "
                  "continuous; far above 1, the forecast jumps away from the present at \"now\".",
                  "This backtest was saved before the continuity board: run `python -m argus_core backtest` again.",
                  {c: "%.3f" for c in continuity.columns if c not in ("model", "points")})

    left, right = st.columns(2)
    with left:
        st.subheader("Calibration")
        st.caption("Share of actuals at or below each forecast quantile; on the diagonal is calibrated.")
        st.plotly_chart(charts.calibration_chart(summary["calibration"]), key="quality-calibration")
    with right:
        st.subheader("Inside incidents")
        table_or_note(quality.anomaly_rows(summary), "quality-anomalies",
                      "Error, coverage and pinball loss inside the dataset's labelled anomaly windows (and a "
                      "simulated fleet's incidents, precursor to breach) against outside them, with the points "
                      "and series each rests on: where Argus would have been surprised.",
                      "This dataset has no labelled anomaly or incident windows (`import --labels FILE`, or an "
                      "import mapping's `labels`, adds them).",
                      {"MASE-scaled error": "%.3f", "coverage": "%.2f", "pinball": "%.3f"})

    served = quality.serving_table(models / model_id)
    st.subheader("What forecasts each series")
    if served is None:
        st.caption("The TFT forecasts every series (this model has no serving table).")
    else:
        counts, table = served
        st.caption("Chosen per series on the validation window before the hold-out: the TFT, seasonal naive, naive "
                   f"or a blend serves, whichever erred least there; {quality.serving_rule()}. "
                   + ", ".join(f"{name}: {count}" for name, count in counts.items()) + ". The scoreboard's "
                   "`served` row scores exactly that. " + quality.serving_defaults(models / model_id))
        st.dataframe(table, hide_index=True, key="quality-serving",
                     column_config={c: st.column_config.NumberColumn(format="%.2f") for c in table.columns
                                    if c.endswith("/ TFT")})

    st.subheader("Forecast against actuals")
    series = quality.scored_series(forecasts)
    pick = st.selectbox("Series", range(len(series)), format_func=lambda i: " · ".join(series[i]), key="quality-series")
    mine = quality.series_forecasts(forecasts, *series[pick])
    origins = sorted(mine["origin"].unique())
    origin = st.select_slider("Forecast origin (UTC)", options=origins, value=origins[-1], key="quality-origin",
                              format_func=lambda t: pd.Timestamp(t).strftime("%m-%d %H:%M"))
    st.plotly_chart(charts.backtest_window(mine[mine["origin"] == origin]), key="quality-window")

    st.subheader("Champion against the latest candidate")
    candidates = [m for m in registered if m != champion and ui.backtest_of(models, m) is not None]
    if champion is None or ui.backtest_of(models, champion) is None or not candidates:
        st.info("Needs a backtest of the champion and of at least one other model, on the same dataset: "
                "`python -m argus_core backtest --dataset DIR --model ID` for each.")
        st.stop()
    candidate = candidates[0]
    st.caption(f"{candidate} against the champion {champion}, their own backtests on the same windows: the promotion "
               "guard (served MASE relative to seasonal naive beaten, coverage in 0.70-0.90, no metric more than 10% "
               "worse).")
    if ui.may("model.promote"):
        with ui.guard("promoting the model"):
            if training.guarded_promote(models, candidate, key="quality-promote"):
                st.success(f"{candidate} is the champion; every forecast page uses it now.")
    else:
        from argus_core.model import judge

        st.info(judge(models, candidate).summary())

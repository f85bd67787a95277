"""Model quality: how good the forecasts are on data the model never trained on, beside simple
alternatives (the backtest saved with each model), and the champion against the latest candidate."""

import pandas as pd
import streamlit as st

import ui
from argus_core import charts
from argus_core.model import registry
from ui import training

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
    st.caption(f"Backtest of {model_id} on {summary['dataset']}: {summary['series']} series, {summary['origins']} "
               f"origins, {summary['horizon']} steps ahead ({summary['evaluation']}), run {summary['created'][:16]} "
               f"UTC. MASE: mean absolute error of p50 over the in-sample seasonal-naive error (below 1 beats "
               "'same time yesterday'); coverage: share of actuals inside p10-p90 (0.80 is calibrated).")

    st.subheader("Scoreboard")
    overall = pd.DataFrame(summary["overall"]).T
    overall = overall[["mean_mase", "median_mase", "pinball_q10", "pinball_q50", "pinball_q90", "coverage", "series"]]
    overall["coverage gap"] = (overall["coverage"] - 0.8).abs()
    overall = overall.astype({"series": int}).rename(columns={
        "mean_mase": "mean MASE", "median_mase": "median MASE", "pinball_q10": "pinball p10",
        "pinball_q50": "pinball p50", "pinball_q90": "pinball p90", "coverage": "p10-p90 coverage"})
    lower_is_better = ["mean MASE", "median MASE", "pinball p10", "pinball p50", "pinball p90", "coverage gap"]
    st.dataframe(overall.style.highlight_min(subset=lower_is_better, color="#c8e6c9")
                 .format(precision=3, subset=lower_is_better + ["p10-p90 coverage"]), key="quality-overall")
    by = st.radio("Break down by", ["metric", "profile", "series"], horizontal=True, key="quality-by")
    if by == "series":
        table = pd.DataFrame(summary["per_series"])
        table = table.pivot_table(index=["server_name", "metric"], columns="model", values="mase")
    else:
        table = pd.DataFrame(summary[f"per_{by}"]).pivot_table(index=by, columns="model", values="mase")
    st.caption(f"Mean MASE per {by}; the best model of each row is highlighted.")
    st.dataframe(table.style.highlight_min(axis=1, color="#c8e6c9").format(precision=3), key="quality-breakdown")

    left, right = st.columns(2)
    with left:
        st.subheader("Calibration")
        st.caption("Share of actuals at or below each forecast quantile; on the diagonal is calibrated.")
        st.plotly_chart(charts.calibration_chart(summary["calibration"]), key="quality-calibration")
    with right:
        st.subheader("Labelled anomalies")
        if summary.get("anomaly_windows"):
            rows = [{"model": m, "where": w, "MASE-scaled error": v["mase"], "coverage": v["coverage"],
                     "points": v["points"]} for m, parts in summary["anomaly_windows"].items()
                    for w, v in parts.items()]
            st.caption("Error and coverage inside the dataset's labelled anomaly windows against outside them: "
                       "where Argus would have been surprised.")
            st.dataframe(pd.DataFrame(rows), hide_index=True, key="quality-anomalies",
                         column_config={"MASE-scaled error": st.column_config.NumberColumn(format="%.3f"),
                                        "coverage": st.column_config.NumberColumn(format="%.2f")})
        else:
            st.info("This dataset has no labelled anomaly windows (an import mapping's `labels` file adds them).")

    st.subheader("Forecast against actuals")
    series = forecasts[["server_name", "metric"]].drop_duplicates().sort_values(["server_name", "metric"])
    labels = [f"{s} · {m}" for s, m in series.itertuples(index=False)]
    pick = st.selectbox("Series", range(len(labels)), format_func=lambda i: labels[i], key="quality-series")
    server, metric = series.iloc[pick]
    mine = forecasts[(forecasts["server_name"] == server) & (forecasts["metric"] == metric)]
    origins = sorted(mine["origin"].unique())
    origin = st.select_slider("Forecast origin (UTC)", options=origins, value=origins[-1], key="quality-origin",
                              format_func=lambda t: pd.Timestamp(t).strftime("%m-%d %H:%M"))
    st.plotly_chart(charts.backtest_window(mine[mine["origin"] == origin]), key="quality-window")

    st.subheader("Champion against the latest candidate")
    candidates = [m for m in registered if m != champion and ui.backtest_of(models, m) is not None]
    if champion is None or ui.backtest_of(models, champion) is None or not candidates:
        st.info("Needs a backtest of the champion and of at least one other model, on the same dataset: "
                "`python -m argus_core backtest --dataset DIR --model ID` for each.")
    else:
        candidate = candidates[0]
        pair = {name: ui.backtest_of(models, name).summary for name in (champion, candidate)}
        same_data = pair[champion]["dataset"] == pair[candidate]["dataset"]
        compare = pd.DataFrame({f"{name} ({'champion' if name == champion else 'candidate'})":
                                s["overall"]["tft"] for name, s in pair.items()}).T
        st.dataframe(compare[["mean_mase", "median_mase", "coverage", "series"]].style.format(precision=3),
                     key="quality-compare")
        if not same_data:
            st.warning("The two backtests ran on different datasets: their figures do not compare.")
        better = pair[candidate]["overall"]["tft"]["mean_mase"] < pair[champion]["overall"]["tft"]["mean_mase"]
        st.caption(f"The candidate's mean MASE is {'lower' if better else 'not lower'} than the champion's.")
        if st.button(f"Promote {candidate}", key="quality-promote", disabled=not same_data):
            training.promote(models, candidate)
            st.success(f"{candidate} is the champion; every forecast page uses it now.")

"""Incident demo (presenter mode): the scripted memory leak replayed in fleet time. The model's
forecast and the risk ranking update at every tick, in place; the moment the model first
predicts the breach and the breach itself are marked, with the lead time between them."""

import time

import pandas as pd
import streamlit as st

import ui
from argus_core.views import charts, replay

NOW, PLAYING, FIRST, LEVELS, LAST_TICK = "demo.now", "demo.playing", "demo.first_predicted", "demo.levels", "demo.t"
ABNORMAL = "demo.first_abnormal"

st.title("Incident demo")
with ui.guard("the incident demo"):
    scenario, frame, model, detector = ui.demo_inputs(ui.current())
state = st.session_state


def reset() -> None:
    state.update({NOW: scenario.start, PLAYING: False, FIRST: None, ABNORMAL: None, LEVELS: {}, LAST_TICK: 0.0})


if NOW not in state:
    reset()
speed = st.segmented_control("Speed", list(replay.SPEEDS), default="15 min per tick", key="demo.speed")
minutes = replay.SPEEDS.get(speed or "15 min per tick", 15)
play, step, restart, _ = st.columns([1, 1, 1, 5])
if play.button("Pause" if state[PLAYING] else "Play", icon=":material/pause:" if state[PLAYING] else
               ":material/play_arrow:", key="demo.play", width="stretch"):
    state[PLAYING] = not state[PLAYING] and state[NOW] < scenario.end
    state[LAST_TICK] = time.monotonic()
    st.rerun()
if step.button("Step", icon=":material/skip_next:", key="demo.step", width="stretch"):
    state[NOW] = replay.tick_after(scenario, state[NOW], minutes)
restart.button("Reset", icon=":material/restart_alt:", key="demo.reset", on_click=reset, width="stretch")


@st.fragment(run_every=1.0 if state[PLAYING] else None)
def stage() -> None:
    if state[PLAYING] and time.monotonic() - state[LAST_TICK] >= 0.9:
        state[NOW] = replay.tick_after(scenario, state[NOW], minutes)
        state[LAST_TICK] = time.monotonic()
        if state[NOW] >= scenario.end:
            state[PLAYING] = False
            st.rerun()  # the whole page: the Play button's label and the timer follow
    with ui.guard("the incident demo"):
        now = state[NOW]
        current = replay.tick(frame, scenario, model, now, state[LEVELS], detector)
    state[LEVELS] = dict(zip(current.ranking["server_name"], current.ranking["level"], strict=True))
    if current.predicted and state[FIRST] is None and now <= scenario.breach_time:
        state[FIRST] = now
    if current.abnormal and state.get(ABNORMAL) is None:
        state[ABNORMAL] = now
    first = state[FIRST]

    clock, phase, lead, odd = st.columns([1.2, 1.5, 2, 2])  # "escalation" whole at 1024 px
    clock.metric("Fleet time (UTC)", f"{now:%H:%M}", help=f"{now:%Y-%m-%d}")
    phase.metric("Phase", current.phase["name"])
    if first is not None and now >= scenario.breach_time:
        lead.metric("Warning before the breach", f"{(scenario.breach_time - first) / pd.Timedelta('1min'):.0f} min")
    elif first is not None:
        lead.metric("Model predicts the breach since", f"{first:%H:%M}")
    else:
        lead.metric("Model predicts the breach", "not yet")
    if detector is not None:
        odd.metric(f"{scenario.server} abnormal", f"since {state[ABNORMAL]:%H:%M}" if state.get(ABNORMAL) else "no",
                   help="the anomaly detector: far from the profile's nominal behaviour for a while")
    st.info(current.phase["narrative"])
    st.plotly_chart(charts.demo_chart(current, scenario, first), key="demo-chart")
    top = current.ranking.head(8)[["server_name", "level", "driver", "p_critical", "score"]]
    st.dataframe(top.assign(p_critical=(100 * top["p_critical"]).round(0)),
                 hide_index=True, key="demo-ranking", column_config={
                     "server_name": st.column_config.TextColumn("server"),
                     "p_critical": st.column_config.ProgressColumn("P(critical)", format="%.0f%%",
                                                                   min_value=0, max_value=100),
                     "score": st.column_config.NumberColumn("risk", format="%.0f")})


st.caption(f"{scenario.name}: {scenario.server} breaches {scenario.metric} >= {scenario.threshold:g} at "
           f"{scenario.breach_time:%H:%M} UTC. Same data and model, same run every time.")
stage()

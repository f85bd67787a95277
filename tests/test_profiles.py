from __future__ import annotations

import subprocess
import sys

import pytest

from argus_core.data.profiles import DEFAULT_FLEET, PROFILES, fleet_composition, fleet_names, infer_profile


@pytest.mark.parametrize("name, profile", [
    ("ppml0001", "ML_COMPUTE"), ("ppgpu07", "ML_COMPUTE"), ("cptrain-a3", "ML_COMPUTE"),
    ("ppdb001", "DATABASE"), ("oracle-prd-2", "DATABASE"), ("MONGO04", "DATABASE"), ("postgres1", "DATABASE"),
    ("ppweb003", "WEB_API"), ("ppapi010", "WEB_API"), ("nginx-edge", "WEB_API"), ("tomcat7", "WEB_API"),
    ("ppcon001", "CONDUCTOR_MGMT"), ("conductor-1", "CONDUCTOR_MGMT"), ("egomgmt2", "CONDUCTOR_MGMT"),
    ("ppetl004", "DATA_INGEST"), ("ppkafka1", "DATA_INGEST"), ("stream-9", "DATA_INGEST"), ("spark02", "DATA_INGEST"),
    ("pprisk001", "RISK_ANALYTICS"), ("varrisk3", "RISK_ANALYTICS"), ("credit-calc", "RISK_ANALYTICS"),
    ("mailhub", "GENERIC"), ("ppsrv001", "GENERIC"), ("", "GENERIC"),
])
def test_infer_profile(name: str, profile: str) -> None:
    assert infer_profile(name) == profile


def test_default_fleet_is_the_agreed_ninety() -> None:
    assert fleet_composition() == {p: DEFAULT_FLEET[p] for p in PROFILES}
    assert sum(fleet_composition().values()) == 90
    fleet = fleet_names(fleet_composition())
    names = [n for n, _ in fleet]
    assert len(set(names)) == 90
    assert {"ppweb001", "ppweb025", "ppml0001", "ppml0020", "ppdb015", "ppetl010", "pprisk008", "ppcon005",
            "ppsrv007"} <= set(names)
    assert all(infer_profile(n) == p for n, p in fleet)  # the simulator's names infer back to their profile


def test_composition_scales_and_respects_fixed_counts() -> None:
    assert sum(fleet_composition(1000).values()) == 1000
    mix = fleet_composition(20, {"DATABASE": 10})
    assert mix["DATABASE"] == 10 and sum(mix.values()) == 20
    with pytest.raises(ValueError, match="more than"):
        fleet_composition(5, {"DATABASE": 10})
    with pytest.raises(ValueError, match="unknown profile"):
        fleet_composition(5, {"MAINFRAME": 1})


def test_core_never_imports_streamlit() -> None:
    code = ("import sys, argus_core.cli, argus_core.data.simulate, argus_core.data.store, argus_core.data.scenario, "
            "argus_core.data.files, argus_core.views.charts, argus_core.views.dashboard, argus_core.views.replay; "
            "print('streamlit' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

"""What an SRE installs beside the checkout: the systemd units for the service and the dashboard
are valid units (`systemd-analyze verify`, with the checkout's path in place of /opt/argus), and
start what `make run` and `serve` start."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def test_the_units_are_valid_systemd_units(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze on this machine (Debian's systemd package has it)")
    python = Path(sys.executable)
    assert UNITS, "deploy/systemd/ holds no unit"
    for unit in UNITS:
        text = unit.read_text().replace("/opt/argus/.venv/bin/python", str(python)).replace("/opt/argus", str(ROOT))
        (tmp_path / unit.name).write_text(text)
    checked = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(tmp_path.glob("*.service")))],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_units_start_the_service_and_the_dashboard_on_loopback():
    serve = (ROOT / "deploy" / "systemd" / "argus-serve.service").read_text()
    dashboard = (ROOT / "deploy" / "systemd" / "argus-dashboard.service").read_text()
    assert "-m argus_core serve" in serve and "--host 127.0.0.1" in serve
    assert "-m ui.launch" in dashboard and "--server.address 127.0.0.1" in dashboard
    for text in (serve, dashboard):
        assert "User=argus" in text and "TimeoutStopSec=" in text and "[Install]" in text

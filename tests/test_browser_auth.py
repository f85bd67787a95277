"""Sign-in in a real browser against a real OpenID Connect provider: `oidc-provider-mock` (a test
identity provider from PyPI) on a free loopback port, the app served as `make run` serves it with
an ``[auth]`` section and a roles file, driven by Debian's Chromium. A viewer sees no Promote
button; an admin promotes, and the promote lands in the audit trail with their e-mail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from argus_core.access import audit
from argus_core.model import registry
from argus_core.runs.store import RunStore, default_path
from tests.test_browser import CHROMIUM, _free_port, _settle, chromium, stop_process, wait_until_up
from tests.test_guard import write_backtest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

VIEWER, OPERATOR, ADMIN = "vera@example.com", "otto@example.com", "ada@example.com"


@pytest.fixture(scope="module")
def provider():
    """The identity provider, on 127.0.0.1 (plain HTTP, as a test provider may be)."""
    mock = pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock is not installed")
    import werkzeug.serving

    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # the provider runs in this process, over http
    server = werkzeug.serving.make_server("127.0.0.1", 0, mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    import httpx

    for email, groups in ((VIEWER, ["staff"]), (OPERATOR, ["staff", "sre-oncall"]), (ADMIN, ["staff", "argus-admins"])):
        answer = httpx.put(f"{url}/users/{quote(email)}", json={"email": email, "name": email, "groups": groups})
        assert answer.status_code == 204
    yield url
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="module")
def app(provider, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y --no-install-recommends chromium`")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pytest.importorskip("authlib", reason="Authlib (Streamlit's sign-in) is not installed")
    home = tmp_path_factory.mktemp("auth")
    models = home / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("runs.sqlite*", ".runs", ".checkpoints"))
    champion = registry.champion_model_id(models)
    other = next(m for m in registry.read(models)["models"] if m != champion)
    write_backtest(models, other, 0.9)  # the candidate beats the champion on the same windows: the guard passes
    runs = RunStore(default_path(models))  # a finished training whose model can be promoted
    run_id = runs.create("retrained", {}, str(ROOT / "demo_data" / "fleet"), status="running")
    runs.finish(run_id, "completed", model_id=other)
    port = _free_port()
    secrets = home / "secrets.toml"
    secrets.write_text(f"""[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "a-cookie-secret-of-a-test-only-length"
client_id = "argus-dashboard"
client_secret = "argus-dashboard-secret"
server_metadata_url = "{provider}/.well-known/openid-configuration"
""")
    roles = home / "roles.toml"  # the admin by group claim, everyone else signed in a viewer
    roles.write_text('default = "viewer"\ngroup_claim = "groups"\n[groups]\n"argus-admins" = "admin"\n'
                     '"sre-oncall" = "operator"\n')
    env = {**os.environ, "ARGUS_THREADS": "1", "ARGUS_MODELS": str(models), "ARGUS_ROLES": str(roles)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ui.launch", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--secrets.files", str(secrets)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, 120)
        yield url, models, other
    finally:
        stop_process(process)


def signed_in(page, url: str, email: str) -> None:
    """Open the Training console, sign in at the provider's form as ``email``, come back."""
    page.goto(url + "/training_console")
    page.get_by_role("button", name="Sign in").click(timeout=120_000)
    page.get_by_placeholder("sub").fill(email, timeout=60_000)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda u: u.startswith(url), timeout=60_000)
    page.goto(url + "/training_console")
    page.get_by_test_id("stSidebarUserContent").get_by_text(f"Signed in as {email}").wait_for(timeout=240_000)
    _settle(page, 120_000)


def sign_out(page, url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click(timeout=120_000)  # the provider's own logout
    page.wait_for_url(lambda u: u.startswith(url), timeout=60_000)
    page.goto(url)
    page.get_by_role("button", name="Sign in").wait_for(timeout=240_000)  # signed out


def test_a_viewer_cannot_promote_and_an_admins_promote_is_audited(app):
    from playwright.sync_api import sync_playwright

    url, models, other = app
    champion = registry.champion_model_id(models)
    with sync_playwright() as p:
        browser = chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(url)
            page.get_by_role("button", name="Sign in").wait_for(timeout=240_000)
            assert page.get_by_text("Fleet overview").count() == 0 or \
                page.locator('[data-testid="stPlotlyChart"]').count() == 0  # nothing shown before signing in
            signed_in(page, url, VIEWER)
            assert "viewer" in page.get_by_test_id("stSidebarUserContent").inner_text()
            assert page.get_by_role("button", name="Promote to champion").count() == 0
            assert page.get_by_role("button", name="Roll back to the previous champion").count() == 0
            assert page.get_by_text("Start a training").count() == 0
            sign_out(page, url)

            signed_in(page, url, OPERATOR)  # by the group claim: may train, may not promote
            assert "operator" in page.get_by_test_id("stSidebarUserContent").inner_text()
            assert page.get_by_text("Start a training").count() == 1
            assert page.get_by_role("button", name="Promote to champion").count() == 0
            sign_out(page, url)

            signed_in(page, url, ADMIN)
            assert "admin" in page.get_by_test_id("stSidebarUserContent").inner_text()
            page.get_by_role("button", name="Promote to champion").click()
            page.get_by_text(f"{other} is now the champion.").wait_for(timeout=120_000)
        finally:
            browser.close()
    assert registry.champion_model_id(models) == other != champion
    trail = audit.trail(models)
    promoted = trail[trail["action"] == "model.promote"]
    assert promoted.iloc[0][["actor", "role", "via", "target", "outcome"]].tolist() == [
        ADMIN, "admin", "dashboard", other, "done"]
    assert promoted.iloc[0]["source"] in ("127.0.0.1", "::1", "")

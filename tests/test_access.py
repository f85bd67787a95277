"""Who may do what: the roles file, the audited core path (a refused action changes nothing and
is recorded), the service's scoped tokens endpoint by endpoint on a real uvicorn server, and the
pages as a viewer and as an admin (AppTest's signed-in user)."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from argus_core import access
from argus_core.access import audit, tokens
from argus_core.cli.main import main
from argus_core.errors import SettingsError
from argus_core.live.api import Access, create_app
from argus_core.live.service import Service, Settings
from argus_core.model import registry
from tests import test_live
from tests.test_hostile import Running
from tests.test_live import CLOCK

ROOT = Path(__file__).resolve().parents[1]

ROLES = """
default = "viewer"
group_claim = "groups"

[users]
"Alice@Example.com" = "admin"
"bob@example.com" = "viewer"

[groups]
"sre-oncall" = "operator"
"""


@pytest.fixture
def models(tmp_path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(ROOT / "models", target, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    return target


def test_the_roles_file_gives_each_user_the_highest_role_named(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text(ROLES)
    book = access.RoleBook.load(path)
    assert book.role_of("alice@example.com") == "admin"  # e-mail case-insensitive
    assert book.role_of("bob@example.com", {"groups": ["sre-oncall"]}) == "operator"  # the higher of the two
    assert book.role_of("carol@example.com", {"groups": ["marketing"]}) == "viewer"  # the default
    assert access.RoleBook.load(tmp_path / "absent.toml").role_of("anyone@example.com") == "viewer"
    path.write_text('default = "none"\n[users]\n"a@b.c" = "superuser"\n')
    with pytest.raises(SettingsError, match="superuser"):
        access.RoleBook.load(path)
    path.write_text('default = "none"\n')
    assert access.RoleBook.load(path).role_of("stranger@example.com") == "none"
    path.write_text("default = [")
    with pytest.raises(SettingsError, match="cannot be read"):
        access.RoleBook.load(path)


def test_each_role_may_do_what_the_readme_says():
    viewer, operator, admin = (access.Actor(r, r) for r in access.ROLES)
    for action, least in access.ACTIONS.items():
        assert access.allowed(admin, action)
        assert access.allowed(operator, action) == (least in ("viewer", "operator"))
        assert not access.allowed(viewer, action)
    assert access.allowed(operator, "silence.expire") and not access.allowed(operator, "model.promote")


def test_a_forged_promote_by_a_viewer_is_refused_in_the_core_and_recorded(models):
    champion = registry.champion_model_id(models)
    other = next(m for m in registry.read(models)["models"] if m != champion)
    viewer = access.Actor("bob@example.com", "viewer", "dashboard", "10.0.0.7")
    with pytest.raises(access.AccessDenied, match="needs the admin role"):
        access.perform(models, viewer, "model.promote", other, lambda: registry.promote(models, other))
    assert registry.champion_model_id(models) == champion  # nothing changed
    admin = access.Actor("alice@example.com", "admin", "dashboard", "10.0.0.8")
    access.perform(models, admin, "model.promote", other, lambda: registry.promote(models, other))
    assert registry.champion_model_id(models) == other
    trail = audit.trail(models)
    assert list(trail["outcome"]) == ["done", "refused"]  # newest first
    assert list(trail["actor"]) == ["alice@example.com", "bob@example.com"]
    assert set(trail["action"]) == {"model.promote"} and list(trail["source"]) == ["10.0.0.8", "10.0.0.7"]


def test_tokens_are_shown_once_stored_hashed_and_revoked_at_once(models, capsys):
    assert main(["token", "--models", str(models), "create", "agents", "--scopes", "ingest,read"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith(tokens.PREFIX) and len(token) > 40
    stored = (models / tokens.FILENAME).read_text()
    assert token not in stored and tokens.digest(token) in stored
    assert (models / tokens.FILENAME).stat().st_mode & 0o077 == 0
    assert main(["token", "--models", str(models), "list"]) == 0
    listed = capsys.readouterr().out
    assert "agents" in listed and "ingest,read" in listed and token not in listed
    book = tokens.TokenBook(models / tokens.FILENAME)
    assert book.find(token).name == "agents" and book.find(token + "x") is None
    assert main(["token", "--models", str(models), "revoke", "agents"]) == 0
    assert book.find(token) is None  # the file changed: read again
    assert main(["token", "--models", str(models), "create", "x", "--scopes", "root"]) != 0
    assert "unknown scope" in capsys.readouterr().err
    assert set(audit.trail(models)["action"]) == {"token.create", "token.revoke"}
    assert token not in audit.trail(models).to_string()


def _call(url: str, token: str | None = None, body=None, method: str | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    if method == "POST" and data is None:
        data = b""
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


ENDPOINTS = [  # (scope, method, path, body): every endpoint behind a scope
    ("ingest", "POST", "/api/v1/samples", []),
    ("runs", "POST", "/api/v1/runs", {"name": "outside"}),
    ("runs", "POST", "/api/v1/runs/999/metrics", [{"step": 1, "epoch": 0, "values": {"loss": 1.0}}]),
    ("runs", "POST", "/api/v1/runs/999/status", {"status": "completed"}),
    ("operate", "POST", "/api/v1/silences", {"server": "web-*", "until": "2099-01-01T00:00:00Z"}),
    ("operate", "DELETE", "/api/v1/silences/no-such-silence", None),
    ("operate", "POST", "/api/v1/cycle", {}),
    ("admin", "POST", "/api/v1/rules/reload", None),
    ("admin", "POST", "/api/v1/models/reload", None),
    ("read", "GET", "/api/v1/audit", None),
    ("read", "GET", "/api/v1/risk", None),
    ("read", "GET", "/api/v1/models", None),
    ("read", "GET", "/api/v1/runs", None),
    ("read", "GET", "/api/v1/alerts", None),
    ("read", "GET", "/metrics", None),
]


def test_each_scope_opens_its_endpoints_and_no_other_on_a_real_server(tmp_path, monkeypatch):
    monkeypatch.setenv("ARGUS_THREADS", "1")
    dataset, models = test_live.live.__wrapped__(tmp_path)
    path = models / tokens.FILENAME
    made = {scope: tokens.create(path, f"t-{scope}", (scope,)) for scope in tokens.SCOPES}
    service = Service(Settings(dataset=dataset, models=models, threads=1,
                               rules=ROOT / "deploy" / "alerts.toml"), clock=lambda: CLOCK)
    with Running(create_app(service, Access(tokens=path, private_reads=True))) as url:
        for scope, method, where, body in ENDPOINTS:
            for holder, token in made.items():
                code = _call(url + where, token, body, method)
                if holder in (scope, "admin"):  # let in: what follows is the endpoint's own answer
                    assert code not in (401, 403), (holder, method, where, code)
                else:
                    assert code == 403, (holder, method, where, code)
            assert _call(url + where, None, body, method) == 401
            assert _call(url + where, "argus_forged-token-of-the-right-length", body, method) == 401
        assert _call(url + "/healthz") == 200  # never behind a token
        tokens.revoke(path, "t-admin")
        assert _call(url + "/api/v1/rules/reload", made["admin"], method="POST") == 401  # refused at once
    trail = audit.trail(models, 1000)
    done = trail[trail["outcome"] == "done"]
    assert {"silence.add", "rules.change"} <= set(done["action"])
    assert set(done.loc[done["action"] == "silence.add", "actor"]) == {"t-operate", "t-admin"}
    refused = trail[trail["outcome"] == "refused"]
    assert {"silence.add", "rules.change"} <= set(refused["action"]) and (refused["source"] == "127.0.0.1").all()
    assert not any(token in trail.to_string() for token in made.values())  # no token is ever recorded


def test_an_open_service_stays_open_and_a_legacy_token_has_every_scope(tmp_path, monkeypatch):
    monkeypatch.setenv("ARGUS_THREADS", "1")
    dataset, models = test_live.live.__wrapped__(tmp_path)
    service = Service(Settings(dataset=dataset, models=models, threads=1), clock=lambda: CLOCK)
    with Running(create_app(service, Access())) as url:
        assert _call(url + "/api/v1/silences", None, {"server": "db-*", "until": "2099-01-01T00:00:00Z"}) == 201
    legacy = "a-long-legacy-token-of-old"
    with Running(create_app(service, Access(token=legacy))) as url:
        assert _call(url + "/api/v1/silences", None, {"server": "db-*", "until": "2099-01-01T00:00:00Z"}) == 401
        assert _call(url + "/api/v1/silences", legacy, {"server": "db-*", "until": "2099-01-01T00:00:00Z"}) == 201
        assert _call(url + "/api/v1/audit", legacy) == 200
    actors = set(audit.trail(models)["actor"])
    assert actors == {"anyone (no token)", "no token", "service token"}  # the refused push recorded too


def _console(models: Path, user: dict | None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    if user is not None:
        at.secrets["auth"] = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                              "client_id": "argus", "client_secret": "s",
                              "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
        at.user = user
    at.switch_page("app_pages/training_console.py")
    return at


def test_the_console_draws_only_what_the_role_may_do(models, tmp_path, monkeypatch):
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)
    monkeypatch.setenv("ARGUS_ROLES", str(roles))
    monkeypatch.setenv("ARGUS_MODELS", str(models))
    monkeypatch.setenv("ARGUS_THREADS", "1")
    at = _console(models, {"is_logged_in": False})
    at.run()
    assert [b.label for b in at.button] == ["Sign in"] and not at.exception  # nothing else before signing in
    at = _console(models, {"is_logged_in": True, "email": "bob@example.com", "groups": []})
    at.run()
    assert not at.exception
    keys = {b.key for b in at.button}
    assert "rollback" not in keys and "promote" not in keys and not any(f.key == "train-form" for f in at.get("form"))
    assert any("Signed in as **bob@example.com** · viewer" in c.value for c in at.sidebar.caption)
    at = _console(models, {"is_logged_in": True, "email": "alice@example.com"})
    at.run()
    assert "rollback" in {b.key for b in at.button} and not at.exception
    champion = registry.champion_model_id(models)
    at.button(key="rollback").click().run()
    assert registry.champion_model_id(models) != champion and not at.exception
    trail = audit.trail(models)
    assert trail.iloc[0][["actor", "role", "via", "action", "outcome"]].tolist() == [
        "alice@example.com", "admin", "dashboard", "model.rollback", "done"]
    shown = [d.value for d in at.dataframe if "actor" in d.value.columns]
    assert shown and shown[0]["actor"].iloc[0] == "alice@example.com"  # the console's audit trail
    at = _console(models, {"is_logged_in": True, "email": "stranger@example.com"})
    roles.write_text('default = "none"\n')
    at.run()
    assert any("no role" in w.value for w in at.warning) and not at.exception


@pytest.mark.parametrize("page", ["app_pages/fleet_overview.py", "app_pages/training_console.py"])
def test_an_open_dashboard_beyond_loopback_says_so_on_every_page(models, monkeypatch, page):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ARGUS_MODELS", str(models))
    monkeypatch.setenv("ARGUS_THREADS", "1")
    before = config.get_option("server.address")
    try:
        for address, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
            config.set_option("server.address", address)
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            at.switch_page(page).run()
            said = [w.value for w in at.sidebar.warning if "No sign-in" in w.value]
            assert bool(said) == warned and not at.exception, (address, said)
            if warned:
                assert "0.0.0.0" in said[0] and "anyone who can reach it" in said[0]
    finally:
        config.set_option("server.address", before)

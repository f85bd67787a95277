"""A corpus of bad inputs, as a new user or a careless script would give them (issue 15): every
case gets a clear message, a non-zero exit, no traceback, and the stored data byte for byte as
it was. CLI cases run ``main`` in this process (an uncaught exception fails the case); page cases
run the app through AppTest."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from argus_core.cli.main import main
from argus_core.data import store
from tests.test_store import snapshot

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models"
CHAMPION = json.loads((SHIPPED / "registry.json").read_text())["champion"]
DEMO = ROOT / "demo_data" / "incident"


@dataclass(frozen=True)
class World:
    """A dataset, a models directory (a copy of the shipped one) and files to feed them."""

    root: Path
    dataset: Path
    models: Path

    def file(self, name: str, text: str) -> Path:
        path = self.root / "inputs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    dataset = root / "fleet"
    frame = store.read(DEMO, end=pd.Timestamp("2026-03-09T23:55Z"))
    store.write_dataset(dataset, frame, kind="imported", step="5min")
    models = root / "models"
    shutil.copytree(SHIPPED, models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    (root / "a-file").write_text("not a folder\n")
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("a folder of someone's notes, not a dataset\n")
    frame.head(12).to_csv(root / "contract.csv", index=False)
    return World(root, dataset, models)


def contract_rows(world: World, change) -> Path:
    """The contract file with one change (a function of its text lines)."""
    lines = (world.root / "contract.csv").read_text().splitlines()
    return world.file("changed.csv", "\n".join(change(lines)) + "\n")


def set_time(lines: list[str], row: int, stamp: str) -> list[str]:
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index("timestamp")] = stamp
    return [*lines[:row], ",".join(cells), *lines[row + 1:]]


def set_cell(lines: list[str], row: int, column: str, value: str) -> list[str]:
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    return [*lines[:row], ",".join(cells), *lines[row + 1:]]


def mapping(world: World, text: str) -> Path:
    return world.file("mapping.toml", text)


def long_file(world: World) -> Path:
    return world.file("long.csv", "timestamp,host,cpu\n2026-03-10T00:00:00Z,db-7,10\n2026-03-10T00:05:00Z,db-7,11\n"
                                  "2026-03-10T00:10:00Z,db-7,12\n")


def broken_model_root(world: World) -> Path:
    root = world.root / "broken-models"
    if not root.exists():
        shutil.copytree(world.models / CHAMPION, root / CHAMPION)
        (root / "registry.json").write_text(json.dumps({"champion": CHAMPION, "history": [],
                                                        "models": {CHAMPION: {"val_loss": 0.5}}}))
        config = json.loads((root / CHAMPION / "config.json").read_text())
        config["spec"]["encoder_length"] = "a day"
        (root / CHAMPION / "config.json").write_text(json.dumps(config))
    return root


def odd_registry(world: World, text: str) -> Path:
    root = world.root / f"registry-{abs(hash(text))}"
    root.mkdir(exist_ok=True)
    (root / "registry.json").write_text(text)
    return root


W = "{w}"  # placeholder for the world's paths in the argument lists below
CASES = {
    # generate
    "generate negative hours": (["generate", "--hours", "-5", "--output", "{root}/g"], 2, "hours must be a positive"),
    "anomaly score nan hours": (["anomaly", "score", "--dataset", "{dataset}", "--models", "{models}",
                                 "--hours", "nan"], 2, "must be a number of hours above 0"),
    "anomaly score absurd hours": (["anomaly", "score", "--dataset", "{dataset}", "--models", "{models}",
                                    "--hours", "1e9"], 2, "at most 43,920"),
    "generate absurd hours": (["generate", "--hours", "1e12", "--output", "{root}/g"], 2, "at most"),
    "generate nan hours": (["generate", "--hours", "nan", "--output", "{root}/g"], 2, "hours must be a positive"),
    "generate no servers": (["generate", "--servers", "0", "--output", "{root}/g"], 2, "servers must be a positive"),
    "generate step without unit": (["generate", "--step", "5", "--output", "{root}/g"], 2, "needs a number and a unit"),
    "generate zero step": (["generate", "--step", "0min", "--output", "{root}/g"], 2, "between 1s and 1 day"),
    "generate bad start": (["generate", "--start", "soon", "--output", "{root}/g"], 2, "is not an ISO 8601 time"),
    "generate negative incident rate": (["generate", "--incident-rate", "-1", "--output", "{root}/g"], 2,
                                        "incident_rate"),
    "generate too many fixed servers": (["generate", "--servers", "3", "--num-database", "9", "--output", "{root}/g"],
                                        2, "more than --servers"),
    "generate into a path under a file": (["generate", "--hours", "1", "--output", "{root}/a-file/g"], 1,
                                          "a-file"),
    "generate under a file says so": (["generate", "--hours", "1", "--output", "{root}/a-file/g"], 1,
                                      "it is a file where a folder must be"),
    "pull a span past any date": (["pull", "--prometheus-url", "http://127.0.0.1:9", "--dataset", "{root}/p",
                                   "--span", "200000d"], 2, "is too long: at most 106,751 days"),
    "models list --models after the action": (["models", "list", "--models", "{root}/no-models"], 0,
                                              "no models in"),
    "generate over a folder that is not a dataset": (["generate", "--hours", "1", "--output", "{root}/notes"], 1,
                                                     "refusing to overwrite"),
    # validate
    "validate missing file": (["validate", "{root}/nothing.csv"], 1, "nothing.csv"),
    "validate year 2300": (["validate", "{year2300}"], 1, "1677..2262"),
    "validate step without unit": (["validate", "--step", "5", "{root}/contract.csv"], 2, "needs a number and a unit"),
    "validate mixed zones": (["validate", "{mixed}"], 1, "mixed time zones"),
    "validate binary file": (["validate", "{binary}"], 1, "problem"),
    # import (the contract path)
    "import year 2300": (["import", "{year2300}", "--dataset", "{dataset}"], 1, "1677..2262"),
    "import a count past int32": (["import", "{big_count}", "--dataset", "{root}/big"], 1,
                                  "back_close_wait=4294967306; at most 2,147,483,647"),
    "import one row": (["import", "{one_row}", "--dataset", "{dataset}"], 1, "too short"),
    "import mixed zones": (["import", "{mixed}", "--dataset", "{dataset}"], 1, "mixed time zones"),
    "import rows already there": (["import", "{root}/contract.csv", "--dataset", "{dataset}"], 1,
                                  "rows already in the dataset"),
    "import step without unit": (["import", "{root}/contract.csv", "--dataset", "{dataset}", "--step", "5"], 2,
                                 "needs a number and a unit"),
    "import under a file": (["import", "{next_day}", "--dataset", "{root}/a-file/ds"], 1, "a-file"),
    # import with a mapping
    "mapping misspelt key": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:stpe}"], 1,
                             "did you mean 'step'"),
    "mapping misspelt table": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:colums}"], 1,
                               "did you mean 'columns'"),
    "mapping columns not a table": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:columns}"], 1,
                                    "must be a table"),
    "mapping servers a list": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:servers}"], 1,
                               "must be a table"),
    "mapping metrics a number": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:metrics}"], 1,
                                 "must be a table"),
    "mapping threshold as text": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:warning}"], 1,
                                  "must be a number"),
    "mapping step as a number": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:step5}"], 1,
                                 "must be text"),
    "mapping step without unit": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:step5s}"], 1,
                                  "needs a number and a unit"),
    "mapping not TOML": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:toml}"], 1,
                         "unreadable mapping file"),
    "mapping misspelt source key": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:prefx}"], 1,
                                    "did you mean 'server_prefix'"),
    "mapping misspelt pattern key": (["import", "{long}", "--dataset", "{root}/m", "--mapping", "{map:patern}"], 1,
                                     "did you mean 'file_pattern'"),
    # predict
    "predict as-of not a date": (["predict", "--dataset", "{dataset}", "--models", "{models}", "--as-of", "notadate",
                                  "--output", "{root}/f.parquet"], 1, "is not a time"),
    "predict as-of a huge number": (["predict", "--dataset", "{dataset}", "--models", "{models}", "--as-of",
                                     "99999999999", "--output", "{root}/f.parquet"], 1, "is not a time"),
    "predict model path outside models": (["predict", "--dataset", "{dataset}", "--models", "{models}", "--model",
                                           f"../elsewhere/{CHAMPION}", "--output", "{root}/f.parquet"], 1,
                                          "is not a model id"),
    "predict unknown model": (["predict", "--dataset", "{dataset}", "--models", "{models}", "--model", "tft-nope",
                               "--output", "{root}/f.parquet"], 1, "no model 'tft-nope'"),
    "predict model config of wrong types": (["predict", "--dataset", "{dataset}", "--models", "{broken}", "--output",
                                             "{root}/f.parquet"], 1, "encoder_length must be a positive"),
    "predict missing dataset": (["predict", "--dataset", "{root}/nope", "--models", "{models}", "--output",
                                 "{root}/f.parquet"], 1, "not an Argus dataset"),
    "predict output under a file": (["predict", "--dataset", "{dataset}", "--models", "{models}", "--output",
                                     "{root}/a-file/f.parquet"], 1, "a-file"),
    # models
    "models registry a list": (["models", "--models", "{reg:list}", "list"], 1, "not a JSON object"),
    "models registry not JSON": (["models", "--models", "{reg:text}", "list"], 1, "unreadable"),
    "models registry of wrong shape": (["models", "--models", "{reg:shape}", "list"], 1, "malformed"),
    "models promote unknown": (["models", "--models", "{models}", "promote", "tft-nope"], 1, "no model 'tft-nope'"),
    # tokens and runs
    "token unknown scope": (["token", "--models", "{models}", "create", "agents", "--scopes", "root"], 1,
                            "unknown scope(s) root"),
    "token no scope": (["token", "--models", "{models}", "create", "agents", "--scopes", ","], 1, "names no scope"),
    "token bad name": (["token", "--models", "{models}", "create", "../x", "--scopes", "read"], 1,
                       "a token's name is"),
    "token revoke unknown": (["token", "--models", "{models}", "revoke", "nobody"], 1, "no live token named nobody"),
    "runs delete unknown": (["runs", "delete", "99", "--models", "{models}"], 1, "no run"),
    # backtest
    "backtest zero origins": (["backtest", "--dataset", "{dataset}", "--models", "{models}", "--origins", "0"], 2,
                              "must be a positive whole number"),
    "backtest negative origins": (["backtest", "--dataset", "{dataset}", "--models", "{models}", "--origins", "-2"],
                                  2, "must be a positive whole number"),
    "backtest zero every": (["backtest", "--dataset", "{dataset}", "--models", "{models}", "--every", "0"], 2,
                            "must be a positive whole number"),
    "backtest on too little data": (["backtest", "--dataset", "{dataset}", "--models", "{models}", "--classical",
                                     "none"], 1, "nothing to backtest"),
    # train
    "train zero steps": (["train", "--dataset", "{dataset}", "--models", "{models}", "--max-steps", "0"], 2,
                         "max_steps must be"),
    "train negative steps": (["train", "--dataset", "{dataset}", "--models", "{models}", "--max-steps", "-5"], 2,
                             "max_steps must be"),
    "train zero epochs": (["train", "--dataset", "{dataset}", "--models", "{models}", "--epochs", "0"], 2,
                          "epochs must be a positive"),
    "train learning rate 5": (["train", "--dataset", "{dataset}", "--models", "{models}", "--learning-rate", "5"], 2,
                              "learning_rate"),
    "train missing dataset": (["train", "--dataset", "{root}/nope", "--models", "{models}"], 1,
                              "not an Argus dataset"),
    # runs and status
    "runs show unknown": (["runs", "show", "999", "--models", "{models}"], 1, "no run"),
    "runs cancel unknown": (["runs", "cancel", "999", "--models", "{models}"], 1, "no run"),
    "status of a folder that is not a dataset": (["status", "--dataset", "{root}/notes", "--models", "{models}"], 1,
                                                 "not an Argus dataset"),
}
MAPPINGS = {
    "stpe": 'stpe = "5min"\n[columns]\nhost = "server_name"\n',
    "colums": '[colums]\nhost = "server_name"\n',
    "columns": 'columns = "oops"\n',
    "servers": 'servers = ["db-7"]\n[columns]\nhost = "server_name"\n',
    "metrics": 'metrics = 3\n[columns]\nhost = "server_name"\n',
    "warning": '[columns]\nhost = "server_name"\n[metrics.cpu]\nwarning = "high"\ncritical = 95\n',
    "step5": 'step = 5\n[columns]\nhost = "server_name"\n',
    "step5s": 'step = "5"\n[columns]\nhost = "server_name"\n',
    "toml": 'step = "5min\n[columns\n',
    "prefx": '[columns]\nhost = "server_name"\n[sources.cpu]\nmetric = "cpu_pct"\nprefx = "db-"\n',
    "patern": 'file_patern = "(?P<server>.+)"\n[columns]\nhost = "server_name"\n',
}
REGISTRIES = {"list": "[1, 2, 3]\n", "text": "{not json\n", "shape": '{"champion": 3, "models": []}\n'}


def fill(arg: str, world: World) -> str:
    if arg.startswith("{map:"):
        return str(mapping(world, MAPPINGS[arg[5:-1]]))
    if arg.startswith("{reg:"):
        return str(odd_registry(world, REGISTRIES[arg[5:-1]]))
    paths = {
        "{year2300}": lambda: contract_rows(world, lambda lines: set_time(lines, 3, "2300-01-01T00:00:00Z")),
        "{mixed}": lambda: contract_rows(world, lambda lines: set_time(lines, 3, lines[3].split(",")[0][:19])),
        "{binary}": lambda: world.file("binary.csv", "\x00\x01\x02 PK garbage\n"),
        "{one_row}": lambda: contract_rows(world, lambda lines: lines[:2]),
        "{big_count}": lambda: contract_rows(world, lambda lines: set_cell(lines, 3, "back_close_wait", "4294967306")),
        "{next_day}": lambda: contract_rows(world, lambda lines: lines),
        "{long}": lambda: long_file(world),
        "{broken}": lambda: broken_model_root(world),
    }
    if arg in paths:
        return str(paths[arg]())
    return arg.replace("{root}", str(world.root)).replace("{dataset}", str(world.dataset)).replace(
        "{models}", str(world.models))


def test_the_corpus_is_large():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_a_clear_message_and_changes_nothing(name, world, capsys):
    argv, code, message = CASES[name]
    argv = [fill(a, world) for a in argv]
    before = {"dataset": snapshot(world.dataset), "models": snapshot(world.models)}
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse's own refusals exit 2 with a usage line
        got = exc.code
    out, err = capsys.readouterr()
    assert got == code, f"exit {got}\n{out}\n{err}"
    assert message in out + err, out + err
    assert "Traceback" not in out + err
    assert {"dataset": snapshot(world.dataset), "models": snapshot(world.models)} == before


# --- pages ---------------------------------------------------------------------------------------

PAGES = ["app_pages/fleet_overview.py", "app_pages/critical_servers.py", "app_pages/server_detail.py",
         "app_pages/model_quality.py", "app_pages/training_console.py"]


def page_run(page: str, models: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("ARGUS_MODELS", str(models))
    monkeypatch.setenv("ARGUS_THREADS", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240)
    at.run()
    at.switch_page(page)
    at.run()
    return at


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("registry_text", ["{not json\n", "[1, 2, 3]\n"])
def test_pages_with_an_unreadable_registry_say_so(page, registry_text, tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(SHIPPED, models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    (models / "registry.json").write_text(registry_text)
    before = snapshot(models)
    at = page_run(page, models, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    said = [e.value for e in at.error if "registry" in e.value]
    assert len(said) == 1, [e.value for e in at.error]  # said once, not once by the sidebar and again by the page
    assert snapshot(models) == before  # nothing written, no runs.sqlite created


def test_pages_with_a_damaged_model_config_say_so(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(SHIPPED, models, ignore=shutil.ignore_patterns("runs.sqlite*", ".*"))
    config = json.loads((models / CHAMPION / "config.json").read_text())
    config["hparams"] = {"__dict__": {"hidden_size": "wide"}}
    (models / CHAMPION / "config.json").write_text(json.dumps(config))
    before = snapshot(models)
    at = page_run(PAGES[0], models, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot be built" in e.value or "config" in e.value for e in at.error), [e.value for e in at.error]
    assert snapshot(models) == before

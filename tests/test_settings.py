"""Settings travel whole: a TrainConfig recorded by the console reaches the training process
field for field (it used to go through a list of flags that covered 14 of its 25 fields)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from argus_core.cli.main import build_parser
from argus_core.cli.models import training_config
from argus_core.errors import SettingsError
from argus_core.model import config as train_config
from argus_core.model.config import TrainConfig
from argus_core.model.spec import ModelSpec
from argus_core.runs import jobs

DEMO = Path(__file__).resolve().parents[1] / "demo_data" / "incident"
# a value unlike the default for every field
EVERY_FIELD_CHANGED = TrainConfig(
    epochs=3, batch_size=16, hidden_size=8, attention_heads=1, dropout=0.25, learning_rate=0.01,
    batches_per_epoch=7, val_batches=5, max_steps=40, patience=2, streaming=True, fresh=True,
    encoder_length=48, horizon=12, validation_fraction=0.2, incident_share=0.4, level_shifts=0.3, seed=5, threads=1,
    checkpoint_minutes=0.5, time_limit_minutes=3.0, layout="wide", holdout=0.1, start_from="tft-x",
    loss_scale="global", center="recent", seasonal_inputs="week", recipe="auto",
    accumulate=3, find_lr="use", devices=2, num_nodes=2, strategy="ddp", accelerator="cpu", server="db-1",
    batch_size_auto=True,
)


def test_the_fixture_changes_every_field():
    defaults = TrainConfig()
    same = [f.name for f in fields(TrainConfig) if getattr(EVERY_FIELD_CHANGED, f.name) == getattr(defaults, f.name)]
    assert same == []


def test_every_field_survives_the_trip_to_the_training_process(tmp_path):
    models = tmp_path / "models"
    runs, run_id = jobs.claim(models, DEMO, EVERY_FIELD_CHANGED, "all fields", "http://127.0.0.1:9/hook",
                              status="queued")
    command = jobs.train_command(DEMO, models, run_id)
    assert command[1:4] == ["-m", "argus_core", "train"]
    args = build_parser().parse_args(command[3:])  # what the child process parses
    config, webhook = training_config(args)
    assert config == EVERY_FIELD_CHANGED
    assert webhook == "http://127.0.0.1:9/hook"
    assert runs.get(run_id).settings == {**train_config.to_json(EVERY_FIELD_CHANGED), "webhook": webhook}


def test_json_round_trip_and_refusals():
    assert train_config.from_json(train_config.to_json(EVERY_FIELD_CHANGED)) == EVERY_FIELD_CHANGED
    assert train_config.from_json({"epochs": 2}) == TrainConfig(epochs=2)  # older records lack newer fields
    with pytest.raises(SettingsError, match="unknown training setting.*epoch"):
        train_config.from_json({"epoch": 2})
    with pytest.raises(SettingsError, match="epochs must be int"):
        train_config.from_json({"epochs": "many"})
    with pytest.raises(SettingsError, match="dropout must be float"):
        train_config.from_json({"dropout": True})
    with pytest.raises(SettingsError, match="must be a JSON object"):
        train_config.from_json([1, 2])


def test_one_set_of_defaults_for_a_new_model():
    spec = ModelSpec(targets=("mem_used_pct",), unknown_reals=("mem_used_pct",))
    assert spec.loss_scale == TrainConfig().loss_scale
    assert spec.center == train_config.NEW_MODEL_CENTER

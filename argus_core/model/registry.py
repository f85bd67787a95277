"""Model versions and the champion pointer: ``models/registry.json``.

    {"champion": "tft-...", "history": ["tft-older", ...],
     "models": {"tft-...": {"created": "...", "val_loss": 0.41, "dataset": "...", "status": "champion"}}}

``history`` holds earlier champions, newest last; roll back pops it. ``specialists`` maps a fleet
model to the servers that have their own fine-tuned copy of it (``train --server``):
``{"tft-fleet": {"web-03": "tft-..."}}``; forecasts by that fleet model use them for those servers.
Every change is written to a temporary file and renamed over the registry, so readers see the old
or the new file whole.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from argus_core import atomic
from argus_core.errors import ArgusError, ModelNotFound

REGISTRY = "registry.json"
DEFAULT_ROOT = Path("models")  # the models directory the CLI uses unless told otherwise


MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # a directory name: no separators, no ".."


def valid_id(model_id: str) -> bool:
    """A name a model directory can have (no path, no "..")."""
    return bool(MODEL_ID.fullmatch(model_id)) and ".." not in model_id

def read(model_root: str | Path) -> dict:
    path = Path(model_root) / REGISTRY
    if not path.exists():
        return {"champion": None, "history": [], "models": {}}
    try:
        registry = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArgusError(f"the model registry {path} is unreadable: {exc}") from exc
    if not isinstance(registry, dict):
        raise ArgusError(f"the model registry {path} is not a JSON object (found {type(registry).__name__}); "
                         "restore it from a backup, or move it away and register models again")
    registry.setdefault("history", [])
    registry.setdefault("models", {})
    registry.setdefault("specialists", {})
    if not isinstance(registry["models"], dict) or not isinstance(registry["history"], list) \
            or not isinstance(registry.get("champion"), str | None) \
            or not isinstance(registry["specialists"], dict) \
            or not all(isinstance(v, dict) for v in registry["specialists"].values()):
        raise ArgusError(f"the model registry {path} is malformed: expected champion (a model id or null), "
                         "history (a list) and models (an object)")
    return registry


def champion_model_id(model_root: str | Path) -> str | None:
    return read(model_root).get("champion")


def register(model_root: str | Path, model_id: str, summary: dict) -> bool:
    """Record a new candidate; the first model ever registered becomes champion. Returns
    True when it did. A model without a finite validation loss is refused (ArgusError)."""
    val_loss = summary.get("val_loss")
    if not isinstance(val_loss, int | float) or not math.isfinite(val_loss):
        raise ArgusError(f"model {model_id} has no finite validation loss ({val_loss!r}): not registered")
    registry = read(model_root)
    registry["models"][model_id] = {**summary, "status": "candidate"}
    became_champion = registry.get("champion") is None
    if became_champion:
        registry["champion"] = model_id
        registry["models"][model_id]["status"] = "champion"
    _write(model_root, registry)
    return became_champion


def add_specialist(model_root: str | Path, fleet_id: str, server: str, model_id: str, summary: dict) -> str | None:
    """Register ``model_id`` as ``server``'s own fine-tuned copy of fleet model ``fleet_id``; returns
    the specialist it replaces (kept on disk, marked retired), if any."""
    registry = read(model_root)
    if fleet_id not in registry["models"]:
        raise ModelNotFound(f"no model {fleet_id!r} in {model_root}; see `python -m argus_core models list`")
    per_server = registry["specialists"].setdefault(fleet_id, {})
    replaced = per_server.get(server)
    if replaced in registry["models"]:
        registry["models"][replaced]["status"] = "retired"
    registry["models"][model_id] = {**summary, "status": "specialist", "server": server, "fleet_model": fleet_id}
    per_server[server] = model_id
    _write(model_root, registry)
    return replaced


def specialists(model_root: str | Path, fleet_id: str) -> dict[str, str]:
    """server -> its own model, for forecasts by fleet model ``fleet_id`` (empty when none)."""
    return dict(read(model_root)["specialists"].get(fleet_id) or {})


def promotable(model_root: str | Path, model_id: str) -> dict:
    """The registry, when ``model_id`` may be made the fleet's champion at all (ModelNotFound for
    an unknown model, ArgusError for a server's own fine-tuned copy); writes nothing."""
    registry = read(model_root)
    if model_id not in registry["models"] or not (Path(model_root) / model_id).is_dir():
        raise ModelNotFound(f"no model {model_id!r} in {model_root}; see `python -m argus_core models list`")
    entry = registry["models"][model_id]
    if entry.get("status") == "specialist" or entry.get("fleet_model"):
        raise ArgusError(f"model {model_id} is {entry.get('server')!r}'s own fine-tuned copy of "
                         f"{entry.get('fleet_model')}: it forecasts that server only and cannot be the fleet champion")
    return registry


def promote(model_root: str | Path, model_id: str) -> dict:
    registry = promotable(model_root, model_id)
    current = registry.get("champion")
    if current == model_id:
        return registry
    if current:
        registry["history"].append(current)
        registry["models"][current]["status"] = "retired"
    registry["champion"] = model_id
    registry["models"][model_id]["status"] = "champion"
    _write(model_root, registry)
    return registry


def rollback(model_root: str | Path) -> dict:
    registry = read(model_root)
    history = [m for m in registry["history"] if (Path(model_root) / m).is_dir()]
    if not history:
        raise ArgusError("there is no earlier champion to roll back to")
    previous = history.pop()
    current = registry.get("champion")
    if current:
        registry["models"][current]["status"] = "candidate"
    registry["history"] = history
    registry["champion"] = previous
    registry["models"][previous]["status"] = "champion"
    _write(model_root, registry)
    return registry


def _write(model_root: str | Path, registry: dict) -> None:
    atomic.write_json(Path(model_root) / REGISTRY, registry)

"""Model directories without pickle.

    models/<model_id>/
      model.safetensors     weights (safetensors.torch.save_model: the TFT shares tensors)
      config.json           ModelSpec, architecture hyper-parameters, training settings
      dataset.json          TimeSeriesDataSet parameters with fitted encoders and normalisers
      training_info.json    data span and hash, metrics, library versions, duration, device

Fitted encoders are stored as JSON by a small codec that knows numpy arrays, pandas frames,
tuples, NaN and an allow-list of encoder classes; decoding builds those classes from plain
attributes, so loading an untrusted directory cannot run code.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from argus_core.errors import ModelDirectoryError, ModelNotFound
from argus_core.model.datasets import quantile_loss
from argus_core.model.spec import ModelSpec

FORMAT_VERSION = 1
FILES = ("model.safetensors", "config.json", "dataset.json", "training_info.json")
# The only classes the codec will build; everything else in a file is plain data.
ALLOWED_CLASSES = frozenset({
    "pytorch_forecasting.data.encoders.MultiNormalizer",
    "pytorch_forecasting.data.encoders.TorchNormalizer",
    "pytorch_forecasting.data.encoders.EncoderNormalizer",
    "pytorch_forecasting.data.encoders.GroupNormalizer",
    "pytorch_forecasting.data.encoders.NaNLabelEncoder",
    "argus_core.model.normalizers.FlooredEncoderNormalizer",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.preprocessing._data.RobustScaler",
})
# Class paths that model directories of earlier releases name, and where each class lives now.
MOVED_CLASSES = {
    "argus_core.normalizers.FlooredEncoderNormalizer": "argus_core.model.normalizers.FlooredEncoderNormalizer",
}
# hyper-parameters rebuilt from other parts of the directory instead of being stored twice
REBUILT_HPARAMS = ("loss", "logging_metrics", "output_transformer", "dataset_parameters")


# --- codec ----------------------------------------------------------------------------------------

def encode(value: object) -> object:
    """Plain JSON for the values found in dataset parameters and hyper-parameters."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else {"__float__": repr(number)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: encode(v) for k, v in value.items()}}
        return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"__objects__": [encode(v) for v in value.tolist()], "shape": list(value.shape)}
        return {"__ndarray__": [encode(v) for v in value.ravel().tolist()], "dtype": value.dtype.str,
                "shape": list(value.shape)}
    if isinstance(value, pd.DataFrame):
        return {"__frame__": {str(c): encode(value[c].to_numpy()) for c in value.columns},
                "index": encode(value.index.to_numpy())}
    if isinstance(value, pd.Series):
        return {"__series__": encode(value.to_numpy()), "index": encode(value.index.to_numpy()), "name": value.name}
    try:
        import torch
        if isinstance(value, torch.Tensor):
            return {"__tensor__": encode(value.detach().cpu().numpy())}
    except ImportError:  # pragma: no cover
        pass
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if name in ALLOWED_CLASSES:
        return {"__object__": name, "state": encode(dict(vars(value)))}
    raise TypeError(f"cannot store a {name} in a model directory")


def decode(value: object) -> object:
    """The inverse of ``encode``; builds only allow-listed classes."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: decode(v) for k, v in value["__dict__"].items()}
    if "__items__" in value:
        return {decode(k): decode(v) for k, v in value["__items__"]}
    if "__ndarray__" in value:
        flat = [decode(v) for v in value["__ndarray__"]]
        return np.array(flat, dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "__objects__" in value:
        array = np.empty(len(value["__objects__"]), dtype=object)
        array[:] = [decode(v) for v in value["__objects__"]]
        return array.reshape(value["shape"])
    if "__frame__" in value:
        columns = {c: decode(v) for c, v in value["__frame__"].items()}
        return pd.DataFrame(columns, index=decode(value["index"]))
    if "__series__" in value:
        return pd.Series(decode(value["__series__"]), index=decode(value["index"]), name=value.get("name"))
    if "__tensor__" in value:
        import torch
        return torch.from_numpy(np.ascontiguousarray(decode(value["__tensor__"])))
    if "__object__" in value:
        name = MOVED_CLASSES.get(value["__object__"], value["__object__"])
        if name not in ALLOWED_CLASSES:
            raise ModelDirectoryError(f"model directory names a class that is not allowed: {name}")
        module, _, cls_name = name.rpartition(".")
        cls = getattr(importlib.import_module(module), cls_name)
        obj = cls.__new__(cls)
        obj.__dict__.update(decode(value["state"]))
        return obj
    raise ModelDirectoryError(f"unknown entry in a model file: {sorted(value)[:3]}")


# --- directories ----------------------------------------------------------------------------------

@dataclass
class LoadedModel:
    model_id: str
    path: Path
    network: object  # TemporalFusionTransformer, kept opaque outside the forecasting modules
    spec: ModelSpec
    dataset_parameters: dict
    config: dict
    training_info: dict
    serving: object = None  # argus_core.model.serving.Serving, or None: the TFT serves every series


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` is a model directory with every file (a save is all or nothing)."""
    return Path(path).is_dir() and all((Path(path) / name).is_file() for name in FILES)


def remove_stale_staging(model_root: str | Path) -> list[Path]:
    """Delete the temporary directories of saves that were killed (``.tft-...`` under the root).
    Call only while no other save runs there (one training at a time per models directory)."""
    root = Path(model_root)
    stale = [p for p in root.glob(".tft-*") if p.is_dir()] if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def save(model_root: str | Path, model_id: str, network, spec: ModelSpec, dataset_parameters: dict,
         training: dict, training_info: dict, serving=None) -> Path:
    """Write a model directory atomically (built under a temporary name, then renamed)."""
    from safetensors.torch import save_model

    root = Path(model_root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / model_id
    if final.exists():
        raise ModelDirectoryError(f"{final} already exists")
    staging = Path(tempfile.mkdtemp(prefix=f".{model_id}.", dir=root))
    try:
        save_model(network, str(staging / "model.safetensors"))
        hparams = {k: v for k, v in dict(network.hparams).items() if k not in REBUILT_HPARAMS}
        config = {
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "architecture": type(network).__name__,
            "spec": spec.to_json(),
            "hparams": encode(hparams),
            "training": training,
        }
        _write_json(staging / "config.json", config)
        _write_json(staging / "dataset.json", {"format_version": FORMAT_VERSION,
                                               "parameters": encode(dataset_parameters)})
        _write_json(staging / "training_info.json", training_info)
        if serving is not None:
            from argus_core.model import serving as serving_table

            serving_table.save(staging, serving)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; a model is shared like any file
        for path in staging.iterdir():
            os.chmod(path, 0o666 & ~umask)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def load(path: str | Path) -> LoadedModel:
    """Load a model directory; ModelNotFound or ModelDirectoryError with the reason otherwise."""
    import torch
    from pytorch_forecasting import TemporalFusionTransformer
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    path = Path(path)
    if not path.is_dir():
        raise ModelNotFound(f"no model directory at {path}")
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise ModelDirectoryError(f"model directory {path} is incomplete: missing {', '.join(missing)}")
    config = _read_json(path / "config.json")
    dataset_file = _read_json(path / "dataset.json")
    info = _read_json(path / "training_info.json")
    for name, payload in (("config.json", config), ("dataset.json", dataset_file)):
        if payload.get("format_version") != FORMAT_VERSION:
            raise ModelDirectoryError(
                f"{path / name} has format version {payload.get('format_version')!r}; this Argus reads "
                f"version {FORMAT_VERSION}. Retrain with `python -m argus_core train`."
            )
    if config.get("architecture") != "TemporalFusionTransformer":
        raise ModelDirectoryError(f"{path} holds an unsupported architecture {config.get('architecture')!r}")
    try:
        spec = ModelSpec.from_json(config["spec"])
        params = decode(dataset_file["parameters"])
        hparams = decode(config["hparams"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelDirectoryError(f"{path} has an unreadable config: {exc}") from exc
    # Lightning's advice about the loss module in the hyperparameters is for its pickled checkpoints,
    # which Argus never writes; every model load (the app, the service) printed it twice
    warnings.filterwarnings("ignore", ".*is an instance of `nn.Module`.*")
    try:
        loss = quantile_loss(spec, params)
        network = TemporalFusionTransformer(**hparams, loss=loss, output_transformer=params["target_normalizer"],
                                            dataset_parameters=params)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        raise ModelDirectoryError(f"{path} has a config the network cannot be built from: "
                                  f"{type(exc).__name__}: {exc}") from exc
    try:
        missing_keys, unexpected = load_model(network, str(path / "model.safetensors"), strict=False)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelDirectoryError(f"{path / 'model.safetensors'} is corrupt or does not fit the config: {exc}") \
            from exc
    if missing_keys or unexpected:
        raise ModelDirectoryError(f"{path / 'model.safetensors'} does not match its config "
                                  f"(missing {len(missing_keys)}, unexpected {len(unexpected)} tensors)")
    network.eval()
    from argus_core.model.fast_tft import speed_up  # imports pytorch-forecasting: only once a model is loaded

    speed_up(network)
    torch.set_grad_enabled(True)  # leave global autograd as we found it; inference uses no_grad locally
    from argus_core.model import serving

    return LoadedModel(path.name, path, network, spec, params, config, info, serving.load(path))


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=1) + "\n")


def _read_json(path: Path) -> dict:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirectoryError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ModelDirectoryError(f"{path} does not hold a JSON object")
    return payload

"""Which process of a multi-process training this is, before Lightning has said so. Torch-free.

A training on N devices of M nodes is N x M processes running the same ``train`` command.
Lightning's own launcher starts them (``train --devices N``: it re-runs the command with
``LOCAL_RANK`` set for devices 1..N-1; on other nodes the user runs it with ``NODE_RANK`` and
``MASTER_ADDR``), or an outside one does (``torchrun`` sets ``RANK``; SLURM ``SLURM_PROCID``).
Only process 0 records the run, writes checkpoints and saves the model: the others train their
share of the windows and leave quietly.
"""

from __future__ import annotations

import os


def global_rank(devices: int = 1) -> int:
    """This process's rank among all training processes (0 when training alone)."""
    if os.environ.get("RANK", "").isdigit():  # torchrun, or any torch.distributed launcher
        return int(os.environ["RANK"])
    if os.environ.get("SLURM_PROCID", "").isdigit() and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        return int(os.environ["SLURM_PROCID"])
    local = int(os.environ["LOCAL_RANK"]) if os.environ.get("LOCAL_RANK", "").isdigit() else 0
    node = int(os.environ["NODE_RANK"]) if os.environ.get("NODE_RANK", "").isdigit() else 0
    return node * max(1, devices) + local


def local_rank() -> int:
    """This process's rank on its own machine: which of the machine's GPUs it trains on."""
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):  # Lightning's launcher and torchrun; srun
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def shard() -> tuple[int, int]:
    """(rank, world size) of the running torch.distributed group, (0, 1) outside one: how a
    training rank picks its share of the windows while Lightning trains."""
    import torch

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1

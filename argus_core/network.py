"""The TFT's variable selection, computed without its largest temporary.

pytorch-forecasting's ``VariableSelectionNetwork`` stacks every variable's transformed input
into one (batch, time, hidden, variables) tensor, multiplies it by the selection weights and
sums over variables. For a 90-server forecast with 18 encoder variables that tensor holds 15 M
floats, written with a stride of 18: the stack and the product took 410 of 800 ms of a
forward pass here. Accumulating the weighted variables one at a time gives the same sum
(up to float rounding, checked in ``tests/test_forecaster.py``) without it.

``speed_up(network)`` switches a network's selection modules to this class in place; the
weights, their names and the outputs the rest of the network sees are unchanged, so model
directories are unaffected. The stock module stays available to benchmarks as the baseline.
"""

from __future__ import annotations

import torch
from pytorch_forecasting.models.temporal_fusion_transformer.sub_modules import VariableSelectionNetwork


class AccumulatingVariableSelection(VariableSelectionNetwork):
    def forward(self, x: dict[str, torch.Tensor], context: torch.Tensor | None = None):
        if self.num_inputs <= 1:
            return super().forward(x, context)
        embeddings = []
        for name in self.input_sizes:
            embedding = x[name]
            if name in self.prescalers:
                embedding = self.prescalers[name](embedding)
            embeddings.append(embedding)
        weights = self.softmax(self.flattened_grn(torch.cat(embeddings, dim=-1), context))  # (..., variables)
        outputs = None
        for index, (name, embedding) in enumerate(zip(self.input_sizes, embeddings, strict=True)):
            part = self.single_variable_grns[name](embedding) * weights[..., index:index + 1]
            outputs = part if outputs is None else outputs + part
        return outputs, weights.unsqueeze(-2)


def speed_up(network: torch.nn.Module) -> torch.nn.Module:
    """Switch every variable selection module of ``network`` to the accumulating one (in place)."""
    for module in network.modules():
        if type(module) is VariableSelectionNetwork:
            module.__class__ = AccumulatingVariableSelection
    return network


def stock(network: torch.nn.Module) -> torch.nn.Module:
    """Undo ``speed_up`` (in place): the library's own modules, for baselines and checks."""
    for module in network.modules():
        if type(module) is AccumulatingVariableSelection:
            module.__class__ = VariableSelectionNetwork
    return network

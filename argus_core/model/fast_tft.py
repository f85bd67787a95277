"""Faster TFT modules with the same weights and the same outputs (to float rounding).

- Variable selection: pytorch-forecasting's ``VariableSelectionNetwork`` stacks every
  variable's transformed input into one (batch, time, hidden, variables) tensor, written with a
  stride of 18, then multiplies and sums over it: 410 of 800 ms of a 90-server forecast. Here
  the weighted variables are accumulated one at a time (``AccumulatingVariableSelection``),
  and for real inputs the prescaler is folded into the affine layers after it, so the
  prescaled embeddings are never made (``FusedVariableSelection``).
- The skip connections' linear interpolation is a product with a fixed matrix (25 -> 3 ms).
- Dropout draws four 16-bit numbers per 64-bit random draw instead of one per element.
- The GLU is two half-width products (``F.glu``'s backward reads a strided half), attention
  scales the queries and adds the mask inside the score product, a static context expanded
  over time goes through its GRN layer once per sample, and the LSTMs skip packing when every
  sequence has the full length.

A training step of the shipped-size model: 0.66 -> 0.43 s on one thread here
(``bench/bench_forecast.py --part training``). ``tests/test_forecaster.py`` checks outputs and
every weight's gradient against the library's modules.

``speed_up(network)`` switches a network's modules to these classes in place; the weights and
their names are unchanged, so model directories are unaffected. ``stock`` switches back (the
baseline of the benchmarks).
"""

from __future__ import annotations

import torch
from pytorch_forecasting.models.nn.rnn import LSTM
from pytorch_forecasting.models.temporal_fusion_transformer.sub_modules import (
    GatedLinearUnit,
    GatedResidualNetwork,
    InterpretableMultiHeadAttention,
    TimeDistributedInterpolation,
    VariableSelectionNetwork,
)


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


class FusedVariableSelection(AccumulatingVariableSelection):
    """Variable selection over scalar inputs without their prescaled embeddings.

    Every real input reaches the selection network through a ``Linear(1, k)`` prescaler, and
    what follows the prescaler is affine until its first non-linearity: a GRN's ``fc1``, its
    skip connection's interpolation and gate, and the flattened GRN's ``fc1`` and skip. So the
    product of those weights with the prescaler's is worked out first (small matrices, every
    forward, so gradients reach the same parameters), and the (rows x k) embeddings, the
    (rows x 18k) concatenation the weights come from and their gradients are never made.
    The skip's LayerNorm of ``s * a + c`` needs only three numbers per variable for its mean
    and variance. Outputs equal the library's to float rounding (``tests/test_forecaster.py``).
    Networks whose inputs do not fit this shape (embedded categoricals, one input) take the
    accumulating route."""

    def forward(self, x: dict[str, torch.Tensor], context: torch.Tensor | None = None):
        if not fusable(self):
            return super().forward(x, context)
        names = list(self.input_sizes)
        scalars = torch.cat([x[name] for name in names], dim=-1)  # (..., variables)
        lead = scalars.shape[:-1]
        rows = scalars.reshape(-1, len(names))  # 2-D throughout: a 3-D linear copies its gradient in backward
        weights = self.softmax(self._selection(rows, lead, context))
        outputs = None
        for index, name in enumerate(names):
            variable, weight = self._single(name, rows[:, index:index + 1]), weights[:, index:index + 1]
            outputs = variable * weight if outputs is None else torch.addcmul(outputs, variable, weight)
        return outputs.view(*lead, -1), weights.view(*lead, 1, -1)

    def _selection(self, rows: torch.Tensor, lead: torch.Size, context: torch.Tensor | None) -> torch.Tensor:
        grn = self.flattened_grn
        names = list(self.input_sizes)
        scale = torch.block_diag(*[self.prescalers[name].weight.T for name in names])  # (variables, total)
        shift = torch.cat([self.prescalers[name].bias for name in names])  # (total,)
        hidden = torch.addmm(grn.fc1.bias + shift @ grn.fc1.weight.T, rows, scale @ grn.fc1.weight.T)
        if context is not None:
            hidden = (hidden.view(*lead, -1) + context_term(grn, context)).view(rows.size(0), -1)
        norm = grn.resample_norm
        matrix = interpolation_matrix(norm.input_size, norm.output_size, rows.dtype, rows.device)
        gate = norm.gate(norm.mask) * 2.0
        skip = torch.addmm((shift @ matrix) * gate, rows, (scale @ matrix) * gate)
        hidden = grn.fc2(grn.elu(hidden))
        return grn.gate_norm(hidden, norm.norm(skip))

    def _single(self, name: str, scalar: torch.Tensor) -> torch.Tensor:
        grn, prescaler = self.single_variable_grns[name], self.prescalers[name]
        weight, bias = prescaler.weight[:, 0], prescaler.bias
        hidden = torch.addcmul(grn.fc1.bias + grn.fc1.weight @ bias, scalar, grn.fc1.weight @ weight)
        hidden = grn.fc2(grn.elu(hidden))
        # skip: LayerNorm(scalar * a + c) where a, c are the prescaler's weight and bias widened and gated
        norm = grn.resample_norm
        matrix = interpolation_matrix(norm.input_size, norm.output_size, scalar.dtype, scalar.device)
        gate = norm.gate(norm.mask) * 2.0
        slope, offset = (weight @ matrix) * gate, (bias @ matrix) * gate
        slope, offset = slope - slope.mean(), offset - offset.mean()
        variance = scalar * ((slope * slope).mean() * scalar + 2.0 * (slope * offset).mean()) \
            + (offset * offset).mean()
        inverse = torch.rsqrt(variance.clamp_min(0.0) + norm.norm.eps)  # (..., 1)
        layer = norm.norm
        # the GLU's output plus the skip, (scalar * a + c) * inverse * gamma + beta, as one product:
        # glu + [scalar * inverse, inverse, 1] @ [a * gamma; c * gamma; beta]
        factors = torch.cat([scalar * inverse, inverse, torch.ones_like(inverse)], dim=-1)
        gated = torch.addmm(grn.gate_norm.glu(hidden), factors,
                            torch.stack([slope * layer.weight, offset * layer.weight, layer.bias]))
        output = grn.gate_norm.add_norm.norm
        return torch.nn.functional.layer_norm(gated, output.normalized_shape, output.weight, output.bias, output.eps)


def context_term(grn: GatedResidualNetwork, context: torch.Tensor) -> torch.Tensor:
    """``grn.context(context)``; for a static context expanded over time (stride 0, as the TFT
    passes it) worked out once per sample and broadcast, not once per time step."""
    if context.dim() >= 3 and context.stride(-2) == 0:
        return grn.context(context[..., :1, :])
    return grn.context(context)


class ContextOnceGRN(GatedResidualNetwork):
    """The library's GRN with its static-context term worked out once per sample (``context_term``)."""

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, residual: torch.Tensor | None = None):
        if residual is None:
            residual = x
        if self.input_size != self.output_size and not self.residual:
            residual = self.resample_norm(residual)
        x = self.fc1(x)
        if context is not None:
            x = x + context_term(self, context)
        x = self.fc2(self.elu(x))
        return self.gate_norm(x, residual)


class LeanDropout(torch.nn.Dropout):
    """Dropout whose mask costs a third of the library's: ``bernoulli_`` draws one random
    number per element (1.5 ms for a (64, 288, 16) activation here, more than the layer it
    follows); this cuts four 16-bit draws from every 64-bit one. Drop probability p to within
    1 / 65,536 (0.1 -> 0.100006), kept values scaled by 1 / (1 - p); seeded by torch's generator."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.applies(x):
            return super().forward(x)
        keep, scale = self.keep(x)
        return x * (keep * scale)

    def applies(self, x: torch.Tensor) -> bool:
        """Whether this dropout draws its own mask for ``x``: in training, on a CPU (a GPU draws
        Bernoulli masks fast enough), not in place."""
        return self.training and 0.0 < self.p and not self.inplace and x.device.type == "cpu"

    def keep(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        """(a boolean mask of x's shape, True where kept; the scale for kept values)."""
        if self.p >= 1.0:
            return torch.zeros(x.shape, dtype=torch.bool, device=x.device), 0.0
        draws = torch.randint(-2 ** 63, 2 ** 63 - 1, ((x.numel() + 3) // 4,), dtype=torch.int64, device=x.device)
        dropped = round(self.p * 65536)
        keep = draws.view(torch.int16)[:x.numel()].view(x.shape) >= dropped - 32768
        return keep, 65536.0 / (65536 - dropped)


class SplitGatedLinearUnit(GatedLinearUnit):
    """The library's GLU as two products and a gate, instead of one product into a double-width
    tensor and ``F.glu`` (whose backward reads the gate half with a stride of twice the width).
    With a ``LeanDropout`` in front, the dropout's scale goes into the (small) weight instead of
    the activation. Same weights (the two halves of ``fc``), same output to rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.fc.weight, self.fc.bias
        if isinstance(self.dropout, LeanDropout) and self.dropout.applies(x):
            keep, scale = self.dropout.keep(x)
            x, weight = x * keep, weight * scale
        elif self.dropout is not None:
            x = self.dropout(x)
        half = self.hidden_size
        value = torch.nn.functional.linear(x, weight[:half], bias[:half])
        return value * torch.sigmoid(torch.nn.functional.linear(x, weight[half:], bias[half:]))


class LeanAttention(InterpretableMultiHeadAttention):
    """The library's interpretable attention with the score scaling moved onto the (small)
    queries and the mask added inside the score product (``baddbmm``), instead of dividing and
    masking each head's (batch, 96, 384) score tensor: same weights, same outputs to rounding.

    In training, when the network never logs its interpretation (``weights_read`` False, set by
    ``speed_up`` from ``log_interval``), nothing reads the attention weights: the heads come
    from torch's fused ``scaled_dot_product_attention`` (20 instead of 40 ms forward and
    backward here) and the weights returned are NaN, so that any reader would see it."""

    weights_read = True

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
        attention = self.attention
        if attention.dropout is not None and attention.dropout.p > 0 and self.training:
            return super().forward(q, k, v, mask)
        scale = self.d_k ** -0.5 if attention.scale else 1.0
        if mask is not None and mask.dim() == 3 and mask.size(0) > 1 and torch.equal(mask, mask[:1].expand_as(mask)):
            mask = mask[:1]  # every window the same length: one mask, broadcast, instead of a (batch, 96, 384) one
        if self.training and not self.weights_read and (mask is None or not bool(mask.all(dim=-1).any())):
            return self._fused(q, k, v, mask, scale)
        values = self.v_layer(v)
        bias = None
        if mask is not None:
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill_(mask, attention.mask_bias)
        heads, weights = [], []
        for i in range(self.n_head):
            queries = self.q_layers[i](q) * scale
            keys = self.k_layers[i](k).transpose(1, 2)
            scores = torch.bmm(queries, keys) if bias is None else torch.baddbmm(bias, queries, keys)
            weight = torch.softmax(scores, dim=2)
            heads.append(self.dropout(torch.bmm(weight, values)))
            weights.append(weight)
        head = torch.stack(heads, dim=2).mean(dim=2) if self.n_head > 1 else heads[0]
        return self.dropout(self.w_h(head)), torch.stack(weights, dim=2)

    def _fused(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float):
        """Heads without their weights (no query here has every key masked: checked by the caller)."""
        queries = torch.stack([layer(q) for layer in self.q_layers], dim=1)  # (batch, heads, queries, d)
        keys = torch.stack([layer(k) for layer in self.k_layers], dim=1)
        values = self.v_layer(v).unsqueeze(1).expand(-1, self.n_head, -1, -1)  # one value layer for all heads
        allowed = None if mask is None else ~mask.unsqueeze(1)
        heads = torch.nn.functional.scaled_dot_product_attention(queries, keys, values, attn_mask=allowed, scale=scale)
        output = self.dropout(self.w_h(self.dropout(heads).mean(dim=1)))
        unread = torch.full((), float("nan"), dtype=q.dtype, device=q.device)
        return output, unread.expand(q.size(0), q.size(1), self.n_head, k.size(1))


class FullLengthLSTM(LSTM):
    """pytorch-forecasting's LSTM packs every batch (sort, pack, unpack) to allow short and empty
    sequences. When every sequence has the full length, as in Argus's windows, packing changes
    nothing but costs a third of the encoder LSTM's forward and backward (31 -> 21 ms here):
    such batches go straight to ``nn.LSTM``, with the same outputs and states."""

    def forward(self, x, hx=None, lengths: torch.Tensor | None = None, enforce_sorted: bool = True):
        if lengths is not None and isinstance(x, torch.Tensor):
            steps = x.size(1 if self.batch_first else 0)
            if lengths.numel() > 0 and bool((lengths == steps).all()):
                return torch.nn.LSTM.forward(self, x, hx)
        return super().forward(x, hx=hx, lengths=lengths, enforce_sorted=enforce_sorted)


class MatrixInterpolation(TimeDistributedInterpolation):
    """Linear interpolation of the last axis (align_corners) as one product with a fixed matrix:
    the skip connections widen every variable's 16 numbers to the hidden size this way, and a
    matrix product is several times faster than ``F.interpolate`` over (batch x time) rows."""

    def interpolate(self, x: torch.Tensor) -> torch.Tensor:
        upsampled = x @ interpolation_matrix(x.size(-1), self.output_size, x.dtype, x.device)
        if self.trainable:
            upsampled = upsampled * self.gate(self.mask.unsqueeze(0)) * 2.0
        return upsampled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.interpolate(x)  # a product over the last axis needs no (batch x time) reshape or copy


def fusable(selection: VariableSelectionNetwork) -> bool:
    """Whether every input is a scalar through a Linear(1, k) prescaler into a GRN with a
    gated, interpolated skip, and the flattened GRN has such a skip too (the TFT's real inputs)."""
    known = getattr(selection, "_argus_fusable", None)
    if known is None:
        known = selection.num_inputs > 1 and _grn_with_skip(selection.flattened_grn)
        for name in selection.input_sizes:
            prescaler = selection.prescalers[name] if name in selection.prescalers else None
            grn = selection.single_variable_grns[name]
            known = known and isinstance(prescaler, torch.nn.Linear) and prescaler.in_features == 1 \
                and prescaler.bias is not None and _grn_with_skip(grn) and grn.context_size is None \
                and grn.fc1.in_features == prescaler.out_features and _plain_add_norm(grn.gate_norm.add_norm)
        selection._argus_fusable = known
    return known


def _plain_add_norm(add_norm: torch.nn.Module) -> bool:
    """LayerNorm(x + skip) with nothing in between (no resampled or gated skip)."""
    return not add_norm.trainable_add and add_norm.input_size == add_norm.skip_size and add_norm.norm.elementwise_affine


def _grn_with_skip(grn: torch.nn.Module) -> bool:
    norm = getattr(grn, "resample_norm", None)
    return isinstance(grn, GatedResidualNetwork) and not grn.residual and grn.input_size != grn.output_size \
        and norm is not None and norm.trainable_add and norm.norm.elementwise_affine


_MATRICES: dict[tuple, torch.Tensor] = {}


def clear_interpolation_cache() -> None:
    """Forget the interpolation matrices made so far (tests: the first use decides their kind)."""
    _MATRICES.clear()


def interpolation_matrix(size_in: int, size_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (size_in, size_out, dtype, str(device))
    if key not in _MATRICES:
        with torch.inference_mode(False):  # made during a forecast, used again by training: a normal tensor
            _MATRICES[key] = _linear_interpolation(size_in, size_out).to(dtype=dtype, device=device)
    return _MATRICES[key]


def _linear_interpolation(size_in: int, size_out: int) -> torch.Tensor:
    """(size_in, size_out): ``x @ it`` is ``F.interpolate(x, size_out, mode="linear", align_corners=True)``."""
    position = torch.arange(size_out, dtype=torch.float64) * ((size_in - 1) / max(size_out - 1, 1))
    low = position.floor().long().clamp(max=size_in - 1)
    high = (low + 1).clamp(max=size_in - 1)
    share = position - low
    matrix = torch.zeros(size_in, size_out, dtype=torch.float64)
    matrix[low, torch.arange(size_out)] += 1 - share
    matrix[high, torch.arange(size_out)] += share
    return matrix


_FAST = {VariableSelectionNetwork: FusedVariableSelection, TimeDistributedInterpolation: MatrixInterpolation,
         InterpretableMultiHeadAttention: LeanAttention, torch.nn.Dropout: LeanDropout,
         GatedLinearUnit: SplitGatedLinearUnit, GatedResidualNetwork: ContextOnceGRN, LSTM: FullLengthLSTM}


def speed_up(network: torch.nn.Module) -> torch.nn.Module:
    """Switch ``network``'s modules to the faster ones (in place)."""
    hparams = getattr(network, "hparams", {})
    logs_interpretation = hparams.get("log_interval", 1) > 0 if hasattr(hparams, "get") else True
    for module in network.modules():
        if type(module) in _FAST:
            module.__class__ = _FAST[type(module)]
        if isinstance(module, LeanAttention):
            module.weights_read = logs_interpretation
    return network


def stock(network: torch.nn.Module) -> torch.nn.Module:
    """Undo ``speed_up`` (in place): the library's own modules, for baselines and checks."""
    library = {fast: original for original, fast in _FAST.items()}
    for module in network.modules():
        if type(module) in library:
            module.__class__ = library[type(module)]
    return network

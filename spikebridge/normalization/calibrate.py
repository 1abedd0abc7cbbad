"""The calibration pass: one pass over calibration data collects activation statistics.

For every activation (each a layer of neurons after conversion) an :class:`ActivationObserver`
keeps, per layer and per channel (dimension 1): the maximum, the count of non-zero activations and
a histogram of the positive ones. Percentiles are read from the histograms, whose bins widen by
doubling whenever a larger value arrives (the HistogramObserver idea of torch.ao, with exact bin
merging). A percentile is then exact up to one bin: the error is at most ``range / bins``, which
:meth:`LayerStatistics.percentile_error` reports (range <= 2 x max, so with the default 4096 layer
bins the error is at most 0.05 % of the layer's maximum). ``exact=True`` keeps every positive
value instead, for small calibration sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, fx, nn

from ..engine import graph as g
from ..progress import progress_bar

LAYER_BINS = 4096
CHANNEL_BINS = 1024


class ActivationObserver:
    """Streaming statistics of one activation's output ([B, C, ...] with channels on dim 1)."""

    def __init__(self, exact: bool = False) -> None:
        self.exact = exact
        self.channels: int | None = None
        self.max: Tensor | None = None
        self.count: Tensor | None = None
        self.range: float = 0.0
        self.layer_hist: Tensor | None = None
        self.channel_hist: Tensor | None = None
        self.values: list[Tensor] = []

    def _grow(self, new_max: float) -> None:
        if self.range == 0.0:
            self.range = new_max
            return
        factor = 1
        while self.range * factor < new_max:
            factor *= 2
        if factor == 1:
            return
        self.layer_hist = _merge_bins(self.layer_hist, factor)
        self.channel_hist = _merge_bins(self.channel_hist, factor)
        self.range *= factor

    def observe(self, out: Tensor) -> None:
        x = out.detach().float()
        if x.dim() == 1:
            x = x.unsqueeze(1)
        per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)  # [C, N]
        channels = per_channel.shape[0]
        if self.channels is None:
            self.channels = channels
            self.max = torch.zeros(channels)
            self.count = torch.zeros(channels, dtype=torch.long)
            self.layer_hist = torch.zeros(LAYER_BINS, dtype=torch.long)
            self.channel_hist = torch.zeros(channels, CHANNEL_BINS, dtype=torch.long)
        elif channels != self.channels:
            raise ValueError(
                f"activation changed from {self.channels} to {channels} channels between batches"
            )
        per_channel = per_channel.cpu()
        self.max = torch.maximum(self.max, per_channel.amax(1).clamp(min=0))
        positive = per_channel > 0
        self.count += positive.sum(1)
        batch_max = float(per_channel.max()) if per_channel.numel() else 0.0
        if batch_max <= 0:
            return
        self._grow(batch_max)
        rows = positive.nonzero(as_tuple=True)[0]
        vals = per_channel[positive]
        if self.exact:
            self.values.append(torch.stack([rows.float(), vals]))
        scaled = vals / self.range
        lb = (scaled * LAYER_BINS).long().clamp_(max=LAYER_BINS - 1)
        self.layer_hist += torch.bincount(lb, minlength=LAYER_BINS)
        cb = (scaled * CHANNEL_BINS).long().clamp_(max=CHANNEL_BINS - 1) + rows * CHANNEL_BINS
        self.channel_hist += torch.bincount(cb, minlength=channels * CHANNEL_BINS).view(
            channels, CHANNEL_BINS
        )


def _merge_bins(hist: Tensor, factor: int) -> Tensor:
    """Re-bin a histogram over [0, R) into one over [0, factor*R) with the same number of bins."""
    bins = hist.shape[-1]
    if factor >= bins:
        merged = torch.zeros_like(hist)
        merged[..., 0] = hist.sum(-1)
        return merged
    summed = hist.reshape(*hist.shape[:-1], bins // factor, factor).sum(-1)
    return torch.cat(
        [summed, torch.zeros(*hist.shape[:-1], bins - bins // factor, dtype=hist.dtype)], -1
    )


def _hist_quantile(hist: Tensor, q: float, upper: float) -> Tensor:
    """q-quantile (q in [0, 1]) of histograms over [0, upper) along the last axis, interpolated in-bin."""
    hist = hist.double()
    bins = hist.shape[-1]
    total = hist.sum(-1, keepdim=True)
    cum = hist.cumsum(-1)
    target = q * total
    idx = torch.searchsorted(cum, target).clamp(max=bins - 1)
    before = torch.where(idx > 0, cum.gather(-1, (idx - 1).clamp(min=0)), torch.zeros_like(target))
    in_bin = hist.gather(-1, idx).clamp(min=1)
    frac = ((target - before) / in_bin).clamp(0, 1)
    width = upper / bins
    value = (idx.double() + frac) * width
    return torch.where(total > 0, value, torch.zeros_like(value)).squeeze(-1).float()


@dataclass
class LayerStatistics:
    """Calibration statistics of one activation layer.

    Attributes:
        max: [C] per-channel maxima (exact).
        count: [C] per-channel number of positive activations.
    """

    observer: ActivationObserver

    @property
    def channels(self) -> int:
        return self.observer.channels or 0

    @property
    def max(self) -> Tensor:
        return self.observer.max

    @property
    def layer_max(self) -> float:
        return float(self.observer.max.max()) if self.channels else 0.0

    def percentile(self, p: float) -> float:
        """p-th percentile (0-100) of the layer's positive activations."""
        obs = self.observer
        if obs.exact:
            vals = torch.cat([v[1] for v in obs.values]) if obs.values else torch.zeros(0)
            return _exact_quantile(vals, p / 100)
        return float(_hist_quantile(obs.layer_hist, p / 100, obs.range))

    def channel_percentile(self, p: float) -> Tensor:
        """[C] p-th percentile (0-100) of each channel's positive activations (0 where none)."""
        obs = self.observer
        if obs.exact:
            rows = (
                torch.cat([v[0] for v in obs.values]).long()
                if obs.values
                else torch.zeros(0, dtype=torch.long)
            )
            vals = torch.cat([v[1] for v in obs.values]) if obs.values else torch.zeros(0)
            return torch.tensor(
                [_exact_quantile(vals[rows == c], p / 100) for c in range(self.channels)]
            )
        return _hist_quantile(obs.channel_hist, p / 100, obs.range)

    def percentile_error(self, per_channel: bool = False) -> float:
        """Upper bound of the histogram's percentile error, in activation units (0 when exact)."""
        if self.observer.exact:
            return 0.0
        return self.observer.range / (CHANNEL_BINS if per_channel else LAYER_BINS)


def _exact_quantile(values: Tensor, q: float) -> float:
    if values.numel() == 0:
        return 0.0
    k = min(values.numel(), max(1, int(round(q * (values.numel() - 1))) + 1))
    return float(values.kthvalue(k).values)


@dataclass
class CalibrationStatistics:
    """Statistics of every activation layer, keyed by the activation module's name."""

    layers: dict[str, LayerStatistics]
    samples: int

    def __getitem__(self, name: str) -> LayerStatistics:
        return self.layers[name]


def activation_layers(gm: fx.GraphModule) -> dict[str, nn.Module]:
    """Activation modules of a prepared graph, in execution order."""
    return {
        str(n.target): gm.get_submodule(n.target)
        for n in gm.graph.nodes
        if n.op == "call_module" and isinstance(gm.get_submodule(n.target), g.ACTIVATIONS)
    }


def input_batches(data: Iterable | Tensor) -> Iterable[Tensor]:
    """The input batches of ``data``: a tensor [N, ...] is one batch; a loader's (x, y) batches
    give x."""
    if isinstance(data, Tensor):
        yield data
        return
    for batch in data:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def expected_input_shape(gm: nn.Module) -> tuple[int, ...] | None:
    """[C, H, W]-style shape the first synaptic layer expects, where it can be told (channels only)."""
    for m in gm.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return (m.in_channels,)
        if isinstance(m, nn.Linear):
            return (m.in_features,)
    return None


def _expected_layer_input(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"[*, {layer.in_features}]"
    dims = "L" if isinstance(layer, nn.Conv1d) else "H, W"
    return f"[B, {layer.in_channels}, {dims}]"


@torch.no_grad()
def _shape_mismatch(model: nn.Module, x: Tensor, device, err: Exception) -> str:
    """A message naming the batch's shape, the layer that refused it and the shape it expects."""
    expected = expected_input_shape(model)
    first = expected[0] if expected else "?"
    message = (
        f"calibration batch of shape {tuple(x.shape)} does not fit the model, which expects "
        f"inputs of shape [B, {first}, ...] ({first} input channels/features, and the spatial "
        "size it was trained on)"
    )
    entered: list[tuple[str, nn.Module, tuple[int, ...]]] = []
    handles = [
        m.register_forward_pre_hook(
            lambda mod, inp, name=name: entered.append((name, mod, tuple(inp[0].shape)))
        )
        for name, m in model.named_modules()
        if isinstance(m, g.SYNAPTIC)
    ]
    try:
        model(x[:1].to(device))
    except RuntimeError:
        pass
    finally:
        for h in handles:
            h.remove()
    if entered:
        name, layer, got = entered[-1]
        message += (
            f": layer {name!r} ({type(layer).__name__}) expects input of shape "
            f"{_expected_layer_input(layer)} but receives {got} from a batch of one"
        )
    return f"{message}. Give calibration data shaped like the training data ({err})"


@torch.no_grad()
def calibrate(
    model: fx.GraphModule,
    data: Iterable | Tensor,
    device: torch.device | str = "cpu",
    exact: bool = False,
    progress: bool = False,
) -> CalibrationStatistics:
    """Run the prepared ANN over ``data`` (a loader of (x, y) batches or a tensor [N, ...]) once.

    Returns per-layer and per-channel statistics of every activation's output.
    """
    layers = activation_layers(model)
    observers = {name: ActivationObserver(exact) for name in layers}
    handles = [
        mod.register_forward_hook(lambda _m, _i, out, name=name: observers[name].observe(out))
        for name, mod in layers.items()
    ]
    model.to(device).eval()
    samples = 0
    try:
        for x in progress_bar(input_batches(data), progress, "calibrate"):
            try:
                model(x.to(device))
            except RuntimeError as err:
                raise ValueError(_shape_mismatch(model, x, device, err)) from err
            samples += x.shape[0]
    finally:
        for h in handles:
            h.remove()
    if samples == 0:
        raise ValueError("the calibration data is empty: give at least one batch of inputs")
    return CalibrationStatistics({n: LayerStatistics(o) for n, o in observers.items()}, samples)

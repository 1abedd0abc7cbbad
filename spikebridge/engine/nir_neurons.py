"""NIR's own neuron and layer definitions as spikebridge modules, for graphs from other tools.

A graph without spikebridge's metadata is read by NIR's definitions (Pedersen et al. 2024),
discretised with forward-Euler steps of length dt:

- IF:      v += R I;                                        z = v > v_threshold; v = v_reset where z
- LIF:     v += dt/tau (v_leak - v + R I);                  z = v > v_threshold; v = v_reset where z
- CubaLIF: i += dt/tau_syn (w_in S - i); v += dt/tau_mem (v_leak - v + R i); fire and reset as LIF

Spikes are 0/1. Parameters are per neuron, of the layer's unbatched shape (or broadcastable to it).
Inputs and outputs are folded [T*B, ...] like every neuron of a SpikingNetwork.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .neurons import SpikingNeuron, empty_steps


def _buffer(module: nn.Module, name: str, value: np.ndarray | float) -> None:
    module.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=torch.float32).clone())


class NIRIFNeuron(SpikingNeuron):
    """NIR's integrate-and-fire neuron: v += R I, a unit spike when v > v_threshold, then
    v = v_reset."""

    def __init__(self, r: np.ndarray, v_threshold: np.ndarray, v_reset: np.ndarray) -> None:
        super().__init__()
        _buffer(self, "r", r)
        _buffer(self, "v_threshold", v_threshold)
        _buffer(self, "v_reset", v_reset)

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        """x_seq: [T, B, ...] input currents -> [T, B, ...] spikes in {0, 1}."""
        if self.v is None:
            self.v = torch.zeros_like(x_seq[0])
        out = empty_steps(x_seq)
        for t in range(x_seq.shape[0]):
            self.v = self.v + self.r * x_seq[t]
            fired = self.v > self.v_threshold
            out[t] = fired
            self.v = torch.where(fired, self.v_reset, self.v)
        return out


class NIRLIFNeuron(SpikingNeuron):
    """NIR's leaky integrate-and-fire neuron, one Euler step of ``dt`` per timestep."""

    def __init__(
        self,
        tau: np.ndarray,
        r: np.ndarray,
        v_leak: np.ndarray,
        v_threshold: np.ndarray,
        v_reset: np.ndarray,
        dt: float,
    ) -> None:
        super().__init__()
        _buffer(self, "rate", dt / np.asarray(tau, dtype=np.float64))  # dt / tau
        _buffer(self, "r", r)
        _buffer(self, "v_leak", v_leak)
        _buffer(self, "v_threshold", v_threshold)
        _buffer(self, "v_reset", v_reset)

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        if self.v is None:
            self.v = torch.zeros_like(x_seq[0])
        out = empty_steps(x_seq)
        for t in range(x_seq.shape[0]):
            self.v = self.v + self.rate * (self.v_leak - self.v + self.r * x_seq[t])
            fired = self.v > self.v_threshold
            out[t] = fired
            self.v = torch.where(fired, self.v_reset, self.v)
        return out


class NIRCubaLIFNeuron(SpikingNeuron):
    """NIR's current-based LIF neuron: a synaptic current filters the input, then LIF."""

    def __init__(
        self,
        tau_syn: np.ndarray,
        tau_mem: np.ndarray,
        r: np.ndarray,
        v_leak: np.ndarray,
        v_threshold: np.ndarray,
        v_reset: np.ndarray,
        w_in: np.ndarray,
        dt: float,
    ) -> None:
        super().__init__()
        _buffer(self, "syn_rate", dt / np.asarray(tau_syn, dtype=np.float64))
        _buffer(self, "mem_rate", dt / np.asarray(tau_mem, dtype=np.float64))
        _buffer(self, "r", r)
        _buffer(self, "v_leak", v_leak)
        _buffer(self, "v_threshold", v_threshold)
        _buffer(self, "v_reset", v_reset)
        _buffer(self, "w_in", w_in)
        self.current: Tensor | None = None

    def reset_state(self) -> None:
        super().reset_state()
        self.current = None

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        if self.v is None:
            self.v = torch.zeros_like(x_seq[0])
            self.current = torch.zeros_like(x_seq[0])
        out = empty_steps(x_seq)
        for t in range(x_seq.shape[0]):
            self.current = self.current + self.syn_rate * (self.w_in * x_seq[t] - self.current)
            self.v = self.v + self.mem_rate * (self.v_leak - self.v + self.r * self.current)
            fired = self.v > self.v_threshold
            out[t] = fired
            self.v = torch.where(fired, self.v_reset, self.v)
        return out


class ElementwiseScale(nn.Module):
    """NIR's Scale: x * scale, elementwise over the unbatched shape. [N, ...] -> [N, ...]."""

    def __init__(self, scale: np.ndarray) -> None:
        super().__init__()
        _buffer(self, "scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class SumPool2d(nn.Module):
    """NIR's SumPool2d: the sum over each window. [N, C, H, W] -> [N, C, H', W']."""

    def __init__(self, kernel_size, stride, padding) -> None:
        super().__init__()
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.stride = tuple(int(s) for s in stride)
        self.padding = tuple(int(p) for p in padding)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


__all__ = ["ElementwiseScale", "NIRCubaLIFNeuron", "NIRIFNeuron", "NIRLIFNeuron", "SumPool2d"]

"""Scoring networks: one evaluator for ANNs and spiking networks of both routes (SPEC 3.1, 3.2).

:func:`evaluate` gives the accuracy after every step, spikes per layer and, when asked, the
operations of every layer (:mod:`.counters`: SOPs by exact fan-out maps, :mod:`.fanout`; analog
MACs; functional calls made countable by :mod:`.instrument`), sharded under ``torchrun``
(:mod:`.shard`).
"""

from .counters import (
    AnnOpCounter,
    AnnOps,
    LayerOps,
    SnnOpCounter,
    count_ann_ops,
    payload_bits,
    uncounted_layers,
)
from .evaluate import evaluate, labelled_batches
from .fanout import dense_macs, fanout_map
from .instrument import instrument
from .result import Evaluation
from .shard import Shard, current_shard, launched_distributed, shard_batches

__all__ = [
    "AnnOpCounter",
    "AnnOps",
    "Evaluation",
    "LayerOps",
    "Shard",
    "SnnOpCounter",
    "count_ann_ops",
    "current_shard",
    "dense_macs",
    "evaluate",
    "fanout_map",
    "instrument",
    "labelled_batches",
    "payload_bits",
    "launched_distributed",
    "shard_batches",
    "uncounted_layers",
]

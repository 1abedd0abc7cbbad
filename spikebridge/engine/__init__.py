"""The engine both routes end in: neurons (time lives only in them), input encoders, the
:class:`~spikebridge.engine.network.SpikingNetwork` simulator, and the fx helpers (one tracer,
node roles, static-node analysis) that conversion, counting and simulation share."""

"""Dataset readers behind :mod:`spikebridge.data` (import from there; this package is internal)."""

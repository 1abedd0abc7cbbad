"""``python -m spikebridge``: the same as the ``spikebridge`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

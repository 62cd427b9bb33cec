"""Brette et al. (2007) benchmark 1 (COBA): conductance-based synapses.

The network, its published parameters and the measured statistics are described in
``examples/brette2007.py``; this script runs it with ``--model coba``::

    python examples/brette_coba.py [--neurons 4000] [--seed 0] [--quick]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brette2007 import main  # noqa: E402

if __name__ == "__main__":
    main(["--model", "coba", *sys.argv[1:]])

"""Brette et al. (2007) benchmark 2 (CUBA): current-based exponential synapses.

The network, its published parameters and the measured statistics are described in
``examples/brette2007.py``; this script runs it with ``--model cuba``::

    python examples/brette_cuba.py [--neurons 4000] [--seed 0] [--quick]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brette2007 import main  # noqa: E402

if __name__ == "__main__":
    main(["--model", "cuba", *sys.argv[1:]])

"""Brette et al. (2007) benchmark 2 (CUBA): current-based exponential synapses, the published setup.

The network and its published parameters are described in
``examples/brette2007.py``; this script runs it with the model fixed to CUBA
(the membrane and the synaptic currents advanced together exactly)::

    python examples/brette_cuba.py [--neurons 4000] [--seed 0] [--quick]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brette2007 import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:], model="cuba")

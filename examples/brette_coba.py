"""Brette et al. (2007) benchmark 1 (COBA): conductance-based synapses, the published setup.

The network, its published parameters and initial state are described in
``examples/brette2007.py``; this script runs it with the model fixed to COBA::

    python examples/brette_coba.py [--neurons 4000] [--seed 0] [--quick] [--kick]

``--kick`` runs the kicked variant (zero initial conductances, 50 ms of Poisson
input) instead of the published initial state.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from brette2007 import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:], model="coba")

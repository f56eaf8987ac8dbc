"""Suite-wide settings. LightGBM's OpenMP threads wait passively, so they never spin against
polars' pool or another test process on the 2-core machines (see models/estimator.py)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

"""How much of a known ε the held-out bound recovers, beside the old max-over-thresholds bound
(issue 23): Laplace and randomized-response scores with known ε, 200 runs each, α = 0.05,
δ = 1e-5. Run: .venv/bin/python docs/_scripts/eps_recovery.py (about a minute)."""

import math
import sys

import numpy as np

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "metrics"))
from test_bound_coverage import labels, naive_eps  # noqa: E402

from lit_mia import metrics as M  # noqa: E402

REPS = 200
for dist, eps_true, n in [
    ("laplace", 1.0, 500),
    ("laplace", 3.0, 500),
    ("laplace", 1.0, 5000),
    ("laplace", 3.0, 5000),
    ("rr", 2.0, 500),
]:
    rng = np.random.default_rng(7)
    m = labels(n, n)
    new = []
    old = []
    above_new = above_old = 0
    for rep in range(REPS):
        if dist == "laplace":
            s = rng.laplace(m.astype(float), 1.0 / eps_true)
        else:
            p = 1 / (1 + math.exp(-eps_true))
            s = np.where(rng.random(2 * n) < p, m, ~m).astype(float)
        e = M.heldout_bounds(s, m, 0.05, 1e-5, seed=rep)["eps_lb"]
        o = naive_eps(s, m, 0.05, 1e-5)
        new.append(e)
        old.append(o)
        above_new += e > eps_true
        above_old += o > eps_true
    med, old_med = np.median(new), np.median(old)
    print(
        f"{dist} eps={eps_true} n={n}+{n}: held-out median {med:.3f} ({med / eps_true:.0%} of "
        f"true), above truth {above_new / REPS:.1%}; old max-over-thresholds median "
        f"{old_med:.3f}, above truth {above_old / REPS:.1%}"
    )

"""Unchanged results across refactors: tiny runs of the shipped experiments, every attack
family, compared with metrics recorded before the renovation (issue 10).

Across machines the comparison is to a relative tolerance of 1e-9 (`REL_TOL`): NumPy/BLAS
reductions are not bit-identical across CPUs (a 2-core AMD EPYC gave
0.056770030668236285 where the recording machine gave 0.05677003066823629), while any real
change of a result moves it by far more than 1e-9. Bit-identity is a same-machine property:
`LIT_MIA_GOLDEN_EXACT=1` demands it, for a refactor checked on the machine that recorded the
file.

`tests/golden_metrics.json` was written by this file at commit 19435f6 (before the
renovation) with `LIT_MIA_RECORD_GOLDEN=1 pytest tests/test_golden.py`, one torch thread
(tests/conftest.py). A change that alters any number of these runs fails here; re-record only
for a change meant to alter results, and say so in the commit.

Timing metrics (seconds, models per second/minute) are left out; so is everything that
depends on a cache's state (each case gets fresh cache directories) or on a timing-based
choice (the LiRA farm is forced to the loop path).

Figures: each figure path (`plots/ib_score_hist.png`, ...) is rendered and logged the first
time this test process meets it; later figures of the same path are built as usual, then
closed unrendered (`_figures_once`). No metric depends on a figure (the metrics of all 11
cases are bit-identical either way), and rendering the ~200 repeats was half of this file's
time.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from lit_mia.run import run_experiment

GOLDEN = Path(__file__).with_name("golden_metrics.json")
RECORD = os.environ.get("LIT_MIA_RECORD_GOLDEN") == "1"
EXACT = os.environ.get("LIT_MIA_GOLDEN_EXACT") == "1"
REL_TOL = 1e-9  # across CPUs: last-digit differences of float reductions, nothing more
ABS_TOL = 1e-12  # metrics that are 0 up to rounding (differences of equal means)

TINY = [
    "data.n_members=64",
    "data.n_nonmembers=64",
    "data.n_validation=32",
    "data.n_shadow=128",
    "data.batch_size=32",
    "net.width=0.5",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.val_adv_steps=2",
    "trainer.val_every_n_epochs=1",
    "attack.steps=5",
    "attack.bootstrap=20",
]
MLP = ["net.name=mlp", "net.width=0.25"]
DIGITS = ["data.name=digits", "data.n_members=60", "data.n_nonmembers=60", "data.n_shadow=300"]
VERIFIABLE = "warmup_epochs=0 ramp_epochs=1"
UPDATES = [
    "updates.m_shadow=24",
    "updates.m_target=8",
    "updates.base_size=64",
    "updates.base_epochs=1",
    "updates.shadow_pool=100",
    "updates.target_pool=100",
    "updates.n_probe=10",
    "updates.batch_size=16",
    "net.width=0.5",
]

CASES: dict[str, tuple[str, list[str]]] = {
    "default": ("default", TINY),
    "regimes": (
        "regimes",
        [
            *TINY,
            *MLP,
            "targets=[natural,pgd,dist,trades,"
            f"dual {VERIFIABLE} proj=5,diffai {VERIFIABLE},ibp {VERIFIABLE}]",
        ],
    ),
    "countermeasures": (
        "countermeasures",
        [
            *TINY,
            "targets=[pgd temperature=5,pgd da_weight=1,natural l1=0.001 l2=0.01,"
            "natural dp_noise_multiplier=1.0,natural data.augment=flip_shift,pgd ratio=0.5]",
            "attack.calibrate=false",
        ],
    ),
    "verified": ("verified", [*TINY, *MLP, f"targets=[ibp {VERIFIABLE}]"]),
    "leakage": (
        "leakage",
        [
            *TINY,
            "targets=[pgd]",
            "attack.leakage_every=1",
            "attack.leakage_n=40",
            "attack.eps_list=[0.0,0.05,0.1]",
        ],
    ),  # fmt: skip
    "lira_farm": (
        "lira",
        [
            *TINY,
            *MLP,
            "targets=[pgd]",
            "attack.lira.n_shadow=4",
            "attack.lira.farm=loop",
            "attack.lira.augment=flip",
        ],
    ),  # fmt: skip
    "lira_lightning": (
        "lira",
        [
            *TINY,
            *MLP,
            "targets=[trades]",
            "attack.lira.n_shadow=2",
            "attack.lira.mode=offline",
            "attack.lira.farm=loop",
        ],
    ),  # fmt: skip
    "table7": (
        "table7",
        [
            *TINY,
            *MLP,
            *DIGITS,
            "attacks=[ib,ia,confidence_infer,model_infer,shadow]",
            "attack.infer.n_train_per_class=1",
            "attack.infer.epochs=2",
            "attack.shadow.epochs=2",
            "attack.shadow.n_models=2",
            "data.n_shadow=240",
            "data.n_members=120",
            "data.n_nonmembers=120",
        ],
    ),  # fmt: skip
    "label_ladder": (
        "label_ladder",
        [
            *TINY,
            *MLP,
            *DIGITS,
            "data.n_validation=0",
            "targets=[natural data.n_members=60,natural data.n_members=30]",
            "attack.boundary.budget=60",
            "attack.boundary.budgets=[30,60]",
            "attack.boundary.n_eval=6",
            "attack.boundary.max_iter=3",
            "attack.boundary.init_eval=5",
            "attack.boundary.init_size=5",
            "attack.thresholds.n_random=4",
            "attack.transfer.epochs=2",
            "attack.augmentation.n_noise=2",
            "attack.cert.n0=5",
            "attack.cert.n=20",
            "attack.cert.n_eval=6",
        ],
    ),  # fmt: skip
    "updates_single": (
        "updates_leak_single",
        [
            *UPDATES,
            "updates.li.epochs=1",
            "updates.ssr.epochs=1",
            "updates.ssr.ae_epochs=1",
            "updates.ssr.n_grid=2",
        ],
    ),  # fmt: skip
    "updates_multi": (
        "updates_leak_multi",
        [
            *UPDATES,
            "updates.k=3",
            "updates.lde.epochs=1",
            "updates.msr.epochs=1",
            "updates.msr.gen_hidden=[16]",
            "updates.msr.n_gen=2",
        ],
    ),  # fmt: skip
}

_RENDERED: set[str] = set()


@pytest.fixture
def _figures_once(monkeypatch):
    """Render and log a figure path once per process; close later figures of that path."""
    import matplotlib.pyplot as plt

    from lit_mia import tracking

    real = tracking.Run.log_figure

    def log_figure(self, fig, path: str) -> None:
        if path in _RENDERED:
            plt.close(fig)
            return
        _RENDERED.add(path)
        real(self, fig, path)

    monkeypatch.setattr(tracking.Run, "log_figure", log_figure)


TIMING = ("seconds", "wall_s", "per_min", "per_s", "cache_hit", "cached", "trained")


def _metrics(case: str, tmp_path: Path) -> dict[str, float]:
    experiment, overrides = CASES[case]
    args = [
        *overrides,
        f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
        f"attack.lira.cache_dir={tmp_path}/cache/shadow_farm",
        f"updates.cache_dir={tmp_path}/cache/updates",
    ]
    results = run_experiment(experiment, args)
    out = {}
    for label, r in results.items():
        for k, v in r.metrics.items():
            if not any(t in k for t in TIMING):
                out[f"{label}|{k}"] = float(v)
    return out


def _same(a: float, b: float, exact: bool = EXACT) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b if exact else math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def test_same_tolerates_last_digit_only():
    """The AMD/Intel last-digit case passes; a change in the 9th significant digit fails."""
    a, b = 0.05677003066823629, 0.056770030668236285

    def same(x: float, y: float) -> bool:
        return _same(x, y, exact=False)

    assert same(a, b) and not _same(a, b, exact=True)
    assert not same(a, a * (1 + 1e-8)) and not same(0.5, 0.5 + 1e-9)
    assert same(float("nan"), float("nan")) and not same(float("nan"), 0.0)
    assert not same(0.0, 1e-9) and same(0.0, 1e-13)


@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_unchanged(case, tmp_path, _figures_once):
    got = _metrics(case, tmp_path)
    if RECORD:
        data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        data[case] = got
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return
    want = json.loads(GOLDEN.read_text())[case]
    assert sorted(got) == sorted(want), "metric keys changed"
    diff = {k: (want[k], got[k]) for k in want if not _same(want[k], got[k])}
    assert not diff, f"{len(diff)} of {len(want)} metrics changed, e.g. {list(diff.items())[:5]}"

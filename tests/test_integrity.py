"""Measurement integrity (issue 12): every membership attack leaks where there is signal and
stays at chance where there is none; calibrated numbers see shadow data only.

Fixtures (digits, a small MLP, seconds on CPU):
- overfit: the target memorises 150 members (train acc 1.0, test acc far below): every
  membership attack of the registry must reach an AUC whose bootstrap lower bound exceeds 0.5.
- no signal: the target is trained on the split's validation set, so the evaluation members and
  non-members are both unseen points from one distribution: every attack's AUC interval must
  contain 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest

from lit_mia import config, training
from lit_mia.attacks.base import LABEL_ONLY, MEMBERSHIP
from lit_mia.attacks.confidence import choose_eps
from lit_mia.attacks.context import AttackContext, shadow_split
from lit_mia.attacks.registry import of_kind

SKIP = {
    "iv": "needs a verifiable target (test_verifiable.py covers I_V)",
    "ia_sweep": "I_A at several eps; its eps choice is tested below",
    "ref_budget": "a curve of RMIA / LiRA by reference budget; rmia and lira are tested here",
    "dp_audit": "audits the training procedure on its own canary model (test_dp_audit.py)",
}

FIXTURE = [
    "data.name=digits",
    "data.n_members=150",
    "data.n_nonmembers=150",
    "data.n_validation=150",
    "data.n_shadow=400",
    "data.batch_size=32",
    "net.name=mlp",
    "net.width=1.0",
    "trainer.max_epochs=40",
    "trainer.enable_progress_bar=false",
    "trainer.val_adv_steps=0",
    "target.lr=0.003",
    "attack.steps=3",
    "attack.bootstrap=200",
    "attack.calibrate=true",
    "attack.infer.n_train_per_class=6",
    "attack.infer.features=[benign]",
    "attack.shadow.n_models=2",
    "attack.lira.n_shadow=8",
    "attack.rmia.n_references=8",  # the LiRA farm's 8 models, shared
    "attack.lira.cache_dir=''",
    "attack.transfer.epochs=30",
    "attack.transfer.batch_size=32",
    "attack.boundary.n_eval=150",
    "attack.boundary.max_iter=4",
    "attack.boundary.init_eval=20",
    "attack.boundary.max_eval=100",
    "attack.boundary.budget=400",
    "attack.boundary.budgets=[400]",
    "attack.thresholds.n_random=0",
    "attack.augmentation.max_shift=2",
    "attack.augmentation.n_noise=20",
    "attack.augmentation.noise_std=0.2",
    "attack.cert.n0=20",
    "attack.cert.n=100",
    "attack.cert.n_eval=150",
]

ATTACK_NAMES = sorted(n for n in of_kind(MEMBERSHIP, LABEL_ONLY) if n not in SKIP)


def _context(signal: bool) -> AttackContext:
    cfg = config.per_target("single", [*FIXTURE, f"attacks=[{','.join(ATTACK_NAMES)}]"])[0]
    bundle, split = training.build_data(cfg, {})
    train_on = split.members if signal else split.validation
    target = training.fit_target(cfg, bundle, train_on, None, seed=int(cfg.seed))
    return AttackContext.build(cfg, bundle, split, target)


@pytest.fixture(scope="module")
def overfit() -> AttackContext:
    return _context(signal=True)


@pytest.fixture(scope="module")
def no_signal() -> AttackContext:
    return _context(signal=False)


def _auc_ci(ctx: AttackContext, name: str) -> tuple[float, float, float]:
    from lit_mia.attacks.registry import ATTACKS

    m = ATTACKS[name].run(ctx).metrics
    return m["auc"], m["auc_ci_low"], m["auc_ci_high"]


def test_fixtures_are_what_they_claim(overfit, no_signal):
    p = overfit.pred
    assert p.accuracy("members") == 1.0 and p.accuracy("nonmembers") < 0.9
    q = no_signal.pred  # both sets unseen: the same accuracy up to sampling noise
    assert abs(q.accuracy("members") - q.accuracy("nonmembers")) < 0.15


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_every_attack_leaks_on_the_overfit_fixture(overfit, name):
    auc, lo, hi = _auc_ci(overfit, name)
    assert lo > 0.5, (name, auc, lo, hi)


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_every_attack_is_at_chance_without_signal(no_signal, name):
    auc, lo, hi = _auc_ci(no_signal, name)
    assert lo <= 0.5 <= hi, (name, auc, lo, hi)


# ---------------------------------------------------------------- defects of issue 12


def test_calibration_shadow_trains_on_as_many_points_as_the_target(overfit):
    """Defect 2: shadow model 0 used to train on n_shadow / 2 = 200 points for a 150-member
    target; it trains on exactly n_members points from the shadow pool."""
    split = overfit.split
    for i in range(3):
        s_in, s_out = shadow_split(split, i)
        assert len(s_in) == len(split.members) == 150 and len(s_out) == 150
        assert not set(s_in) & set(s_out)
        assert set(s_in) | set(s_out) <= set(split.shadow)
    sh = overfit.shadow_models(1)[0]
    assert len(sh.in_idx) == 150
    assert sh.predictor.accuracy("members") == 1.0  # overfits like the target does


def test_too_small_shadow_pool_is_refused(tmp_path):
    from lit_mia.errors import ConfigError
    from lit_mia.run import run_experiment

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(ConfigError, match=r"data.n_shadow=100 .*data.n_members=150"):
        run_experiment(
            "single", [*FIXTURE, "data.n_shadow=100", "attacks=[ib]", f"tracking.uri={uri}"]
        )
    assert not (tmp_path / "mlflow.db").exists() or _no_running(uri)


def _no_running(uri: str) -> bool:
    import mlflow

    client = mlflow.MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    return all(r.info.status != "RUNNING" for r in client.search_runs(exps))


def test_calibrated_thresholds_are_a_function_of_shadow_data_only(overfit):
    """Permuting the target's members, or replacing them by other points, leaves the chosen
    thresholds (and so the decisions on any fixed point) unchanged; only the score of the
    decisions against the true membership moves."""
    from lit_mia.attacks.scoring import calibration_thresholds

    ctx = overfit
    before = calibration_thresholds(ctx, "ib")
    perm = ctx.split.members[np.random.default_rng(0).permutation(len(ctx.split.members))]
    swapped = AttackContext.build(ctx.cfg, ctx.bundle, _with_members(ctx.split, perm), ctx.target)
    swapped._shadows = ctx._shadows  # the same shadow model: no retraining
    assert calibration_thresholds(swapped, "ib") == before
    other = _with_members(ctx.split, ctx.split.validation, validation=ctx.split.members)
    replaced = AttackContext.build(ctx.cfg, ctx.bundle, other, ctx.target)
    replaced._shadows = ctx._shadows
    assert calibration_thresholds(replaced, "ib") == before


def _with_members(split, members, **kw):
    from dataclasses import replace

    return replace(split, members=np.asarray(members), **kw)


def test_ia_sweep_chooses_eps_on_the_shadow_not_the_target():
    """Defect 1: the calibrated number is the target's accuracy at the eps the *shadow*
    prefers, never the max over eps of the target's calibrated accuracy."""
    series = {
        "acc_best": [0.60, 0.70, 0.65],
        "acc_calibrated": [0.55, 0.52, 0.68],  # the target would prefer eps 0.2 ...
        "acc_calibrated_shadow": [0.58, 0.66, 0.61],  # ... the adversary sees eps 0.1
    }
    out = choose_eps(series, [0.0, 0.1, 0.2])
    assert out["eps_calibrated"] == 0.1 and out["acc_calibrated_chosen_eps"] == 0.52
    assert out["eps_best"] == 0.1 and out["acc_best_max"] == 0.70
    assert "acc_calibrated_max" not in out


def test_ia_sweep_end_to_end_logs_the_shadow_choice(overfit):
    from lit_mia.attacks.registry import ATTACKS

    res = ATTACKS["ia_sweep"].run(_with_eps_list(overfit, [0.0, 0.05]))
    s, m = res.series, res.metrics
    pick = int(np.argmax(s["acc_calibrated_shadow"]))
    assert m["eps_calibrated"] == s["eps"][pick]
    assert m["acc_calibrated_chosen_eps"] == s["acc_calibrated"][pick]


def _with_eps_list(ctx, eps_list):
    from dataclasses import replace

    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(ctx.cfg, {"attack": {"eps_list": eps_list}})
    return replace(ctx, cfg=cfg)

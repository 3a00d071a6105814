"""The attack tests' fixtures: a target that leaks and one without signal, as AttackContexts,
shared by every attack's `AttackTester` subclass (tests/helpers/attack_tester.py).

Digits, a full-width MLP, 150 members, seconds on CPU:
- leaking: the target memorises its 150 members (train accuracy 1.0, test accuracy far
  below), so every membership attack has a generalisation gap to find.
- no signal: the target is trained on the split's validation set, so the evaluation members
  and non-members are both unseen points from one distribution: nothing to find.
The verifiable pair is the same with an IBP target (for I_V, which needs a verifier).
"""

from __future__ import annotations

import pytest

from tests.conftest import TINY_TRAINER

CONTRACT = [
    "data.name=digits",
    "data.n_members=150",
    "data.n_nonmembers=150",
    "data.n_validation=150",
    "data.n_shadow=400",
    "data.batch_size=32",
    "net.name=mlp",
    "net.width=1.0",
    *TINY_TRAINER,
    "trainer.max_epochs=40",
    "trainer.val_adv_steps=0",
    "target.lr=0.003",
    "attack.steps=3",
    "attack.bootstrap=200",
    "attack.calibrate=true",
    "attack.eps_list=[0.0,0.05]",
    "attack.infer.n_train_per_class=6",
    "attack.infer.features=[benign]",
    "attack.shadow.n_models=2",
    "attack.lira.n_shadow=8",
    "attack.rmia.n_references=8",  # the LiRA farm's 8 models, shared
    "attack.ref_budget.max_references=8",
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
    "attack.dp_audit.canaries=64",
]
VERIFIABLE = ["target=ibp", "target.warmup_epochs=0", "target.ramp_epochs=1"]


def contract_context(signal: bool, *extra: str):
    """An AttackContext on CONTRACT (+ `extra`): the target trained on the members (`signal`)
    or on the validation set (no signal)."""
    from lit_mia import config, training
    from lit_mia.attacks.context import AttackContext

    cfg = config.per_target("single", [*CONTRACT, *extra])[0]
    bundle, split = training.build_data(cfg, {})
    train_on = split.members if signal else split.validation
    target = training.fit_target(cfg, bundle, train_on, None, seed=int(cfg.seed))
    return AttackContext.build(cfg, bundle, split, target)


@pytest.fixture(scope="session")
def leaking_context():
    return contract_context(signal=True)


@pytest.fixture(scope="session")
def no_signal_context():
    return contract_context(signal=False)


@pytest.fixture(scope="session")
def leaking_verifiable_context():
    return contract_context(True, *VERIFIABLE)


@pytest.fixture(scope="session")
def no_signal_verifiable_context():
    return contract_context(False, *VERIFIABLE)

"""DP-SGD audit with canaries (lit_mia/attacks/dp_audit.py): the estimators' known answers,
the soundness direction on a DP-SGD target (ε̂ never above the accountant's ε), the audit
detecting a non-private target, and bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.special import logit

from lit_mia import cli
from lit_mia.attacks.dp_audit import one_run_eps, one_run_guesses, split_cp_eps
from lit_mia.run import run_experiment
from tests.conftest import tiny
from tests.helpers.attack_tester import AttackTester


def test_one_run_all_correct_closed_form() -> None:
    """v = r correct guesses: P[Bin(r, p) >= r] = p^r = alpha -> eps = logit(alpha^(1/r))."""
    for r, alpha in ((10, 0.05), (200, 0.01)):
        want = logit(alpha ** (1 / r))
        assert one_run_eps(r, r, alpha) == pytest.approx(want, abs=1e-6)
    # chance-level guessing certifies nothing; more correct guesses never lower the bound
    assert one_run_eps(50, 100, 0.05) == 0.0
    e = [one_run_eps(v, 100, 0.05) for v in (60, 70, 80, 90, 100)]
    assert all(a < b for a, b in itertools.pairwise(e))
    assert e[0] >= 0
    # delta > 0 can only lower the bound (more success allowed per guess)
    assert one_run_eps(90, 100, 0.05, 1e-3) <= one_run_eps(90, 100, 0.05)


def test_one_run_guesses_counts() -> None:
    scores = np.arange(10.0)
    included = np.array([0, 0, 1, 0, 1, 0, 1, 1, 1, 1], bool)
    # fraction 0.4 of 10 -> k = 2: top 2 (8, 9) IN, bottom 2 (0, 1) OUT: all 4 right
    assert one_run_guesses(scores, included, 0.4) == (4, 4)
    assert one_run_guesses(-scores, included, 0.4) == (0, 4)


def test_split_cp_eps_separation_and_chance() -> None:
    rng = np.random.default_rng(0)
    inc = rng.random(400) < 0.5
    sep = split_cp_eps(inc + rng.normal(0, 0.01, 400), inc, 0.05, 1e-5, 0)
    # perfect separation on 200 held-out canaries (~100 per side, CP at alpha/2): eps ~ 3
    assert 2.5 < sep < 4.5
    assert split_cp_eps(rng.normal(size=400), inc, 0.05, 1e-5, 0) < 0.3


AUDIT = [
    "attacks=[dp_audit]",
    "net.name=mlp",
    "net.width=0.5",
    "trainer.max_epochs=30",
    "attack.dp_audit.canaries=64",
    "attack.bootstrap=0",
]


@pytest.mark.slow
def test_audit_is_sound_on_dp_sgd_and_detects_a_non_private_target(tmp_path) -> None:
    nat = run_experiment("single", tiny(tmp_path, *AUDIT))
    m = next(iter(nat.values())).metrics
    assert "attack/dp_audit/dp_epsilon" not in m  # no accountant without DP-SGD
    assert m["attack/dp_audit/eps_one_run"] > 0.5, m  # memorised mislabelled canaries
    for noise in (1.0, 3.0):
        dp = run_experiment("single", tiny(tmp_path, *AUDIT, f"target.dp_noise_multiplier={noise}"))
        d = next(iter(dp.values())).metrics
        eps = d["attack/dp_audit/dp_epsilon"]
        assert math.isfinite(eps)
        assert eps > 0
        # soundness: the audit never claims more leakage than the accountant allows
        assert d["attack/dp_audit/eps_cp"] <= eps, d
        assert d["attack/dp_audit/eps_one_run"] <= eps, d


def test_audit_end_to_end_dp_sgd(tmp_path) -> None:
    """The fast version of the soundness check: one DP-SGD target, few epochs."""
    args = [*AUDIT, "trainer.max_epochs=5", "target.dp_noise_multiplier=1.0"]
    res = run_experiment("single", tiny(tmp_path, *args))
    d = next(iter(res.values())).metrics
    for k in ("eps_cp", "eps_one_run", "dp_epsilon", "auc", "eps_lb", "canaries_in"):
        assert f"attack/dp_audit/{k}" in d, k
    assert d["attack/dp_audit/canaries"] == 64
    assert d["attack/dp_audit/eps_cp"] <= d["attack/dp_audit/dp_epsilon"]
    assert d["attack/dp_audit/eps_one_run"] <= d["attack/dp_audit/dp_epsilon"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["attack.dp_audit.canaries=65"], "attack.dp_audit.canaries must be in [2, 64]"),
        (["attack.dp_audit.kind=ood"], "valid: mislabel, natural"),
        (
            ["attack.dp_audit.canaries=32", "attack.dp_audit.guess_fraction=0"],
            "attack.dp_audit.guess_fraction",
        ),
    ],
)
def test_bad_audit_input_exits_2(extra, expected, tmp_path, capsys) -> None:
    uri = f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"
    args = ["data.n_members=64", "data.n_nonmembers=64", "data.n_shadow=128"]
    rc = cli.main(["run", "single", "attacks=[dp_audit]", *args, *extra, uri])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], err
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()


# ---------------------------------------------------------------- the attack contract
@pytest.fixture(scope="session")
def no_signal_dp_context():
    """The no-signal contract fixture trained with DP-SGD at noise multiplier 5: the canary
    model the audit trains like the target cannot memorise its canaries."""
    from tests.attacks.conftest import contract_context

    return contract_context(False, "target.dp_noise_multiplier=5.0")


class TestDPAuditContract(AttackTester):
    """The one-run ε̂ (Steinke et al. 2023) above 0, what a guess certifies, on a
    non-private target that memorises mislabelled canaries; 0 under heavy DP-SGD noise."""

    attack = "dp_audit"
    statistic = "eps_one_run"
    trivial = 0.0
    no_signal = "no_signal_dp_context"

    @pytest.mark.slow  # a DP-SGD target and a DP-SGD canary model (~15-30 s)
    def test_sits_at_chance_without_signal(self, request):
        super().test_sits_at_chance_without_signal(request)

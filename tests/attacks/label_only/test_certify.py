"""Randomized-smoothing certified radius (lit_mia/attacks/label_only/certify.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, norm
from torch import nn

from lit_mia.attacks.label_only.certify import certify, check_cert, clopper_pearson_lower
from lit_mia.attacks.label_only.oracle import LabelOracle
from lit_mia.errors import ConfigError
from tests.helpers.attack_tester import AttackTester


class Halfspace(nn.Module):
    """Class 0 where x_0 < c, class 1 beyond: constant on every ball of radius c - x_0."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        z = x.reshape(len(x), -1)[:, 0] - self.c
        return torch.stack([-z, z], 1)


def test_clopper_pearson_matches_the_exact_binomial_interval():
    alpha = 0.001
    for k, n in [(0, 50), (1, 50), (37, 50), (50, 50), (9000, 10000)]:
        lb = clopper_pearson_lower(np.array([k]), n, alpha)[0]
        if k == 0:
            assert lb == 0.0
        else:  # one-sided alpha = two-sided 2 * alpha (Cohen et al.'s proportion_confint)
            ref = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha).low
            assert lb == pytest.approx(ref, rel=1e-9)
    assert clopper_pearson_lower(np.array([50]), 50, alpha)[0] == pytest.approx(alpha ** (1 / 50))


def test_constant_classifier_radius_is_analytic():
    sigma, n, alpha = 0.5, 400, 0.001
    model = Halfspace(c=1e9)  # class 0 everywhere
    x = torch.rand(3, 1, 2, 2)
    oracle = LabelOracle(model, 3, budget=20 + n)
    c_a, _p_a, r = certify(
        oracle,
        x,
        torch.zeros(3, dtype=torch.long),
        sigma=sigma,
        n0=20,
        n=n,
        alpha=alpha,
        n_classes=2,
        seeds=[0, 1, 2],
    )
    expected = sigma * norm.ppf(alpha ** (1 / n))
    assert (c_a == 0).all()
    assert np.allclose(r, expected)
    assert (oracle.queries == 20 + n).all()


def test_halfspace_radius_matches_the_distance_to_the_boundary():
    sigma, n = 0.25, 20000
    margins = np.array([0.05, 0.2, 0.4])
    x = torch.zeros(3, 1, 1, 4)
    x[:, 0, 0, 0] = torch.tensor(1.0 - margins, dtype=torch.float32)  # boundary at x_0 = 1
    _, _, r = certify(
        LabelOracle(Halfspace(1.0), 3),
        x,
        torch.zeros(3, dtype=torch.long),
        sigma=sigma,
        n0=100,
        n=n,
        alpha=0.001,
        n_classes=2,
        seeds=[5, 6, 7],
    )
    # the smoothed classifier's exact radius is the margin; the CP bound sits just below it
    assert (r <= margins + 1e-3).all()
    assert np.abs(r - margins).max() < 0.02, r


def test_wrong_or_abstaining_samples_get_radius_zero_and_batches_do_not_matter():
    x = torch.zeros(4, 1, 1, 4)
    x[:, 0, 0, 0] = torch.tensor([0.2, 0.9, 1.0, 1.6])
    y = torch.tensor([0, 0, 0, 1])
    kw = dict(sigma=0.25, n0=50, n=500, alpha=0.01, n_classes=2, seeds=[1, 2, 3, 4])
    _c_a, _p_a, r = certify(LabelOracle(Halfspace(1.0), 4), x, y, **kw)
    assert r[0] > 0
    assert r[3] > 0
    assert r[2] == 0  # on the boundary: p_A <= 1/2, abstain
    one = [
        certify(
            LabelOracle(Halfspace(1.0), 1),
            x[i : i + 1],
            y[i : i + 1],
            **{**kw, "seeds": [kw["seeds"][i]]},
        )[2][0]
        for i in range(4)
    ]
    assert np.array_equal(np.array(one), r)
    y_wrong = torch.tensor([1, 0, 0, 1])
    assert certify(LabelOracle(Halfspace(1.0), 4), x, y_wrong, **kw)[2][0] == 0


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ((0.0, 10, 10, 0.01), "sigma"),
        ((-1.0, 10, 10, 0.01), "sigma"),
        ((0.25, 0, 10, 0.01), "n0"),
        ((0.25, 10, 0, 0.01), "attack.cert.n "),
        ((0.25, 10, 10, 1.0), "alpha"),
    ],
)
def test_bad_settings(args, key):
    with pytest.raises(ConfigError, match=key.strip()):
        check_cert(*args)


# ---------------------------------------------------------------- the attack contract
class TestCertRadiusContract(AttackTester):
    attack = "cert_radius"

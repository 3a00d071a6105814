"""LiRA (lit_mia/attacks/lira.py): the Gaussian likelihood-ratio math on a synthetic problem
with a known answer, phi from logits, the balanced keep matrix, query views, the attack end to
end through run_experiment into MLflow (with the shadow-model cache), and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from lit_mia import cli, metrics
from lit_mia.attacks.lira import (
    farm_spec,
    fit_gaussians,
    gaussian_logpdf,
    keep_matrix,
    offline_scores,
    online_scores,
    phi_from_logits,
    query_views,
)
from lit_mia.attacks.registry import ATTACKS
from lit_mia.run import run_experiment
from tests.conftest import all_runs, client_for, tiny
from tests.helpers.attack_tester import AttackTester


# --------------------------------------------------------------------------- pure math
def test_phi_matches_the_definition_and_stays_finite() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 10, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, 10, (50,), generator=g)
    p = torch.softmax(logits, 1)
    py = p.gather(1, y[:, None])[:, 0]
    want = torch.log(py) - torch.log(p.sum(1) - py)
    torch.testing.assert_close(phi_from_logits(logits, y), want)
    extreme = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    phi = phi_from_logits(extreme, torch.tensor([0, 0]))
    assert torch.isfinite(phi).all()
    torch.testing.assert_close(phi, torch.tensor([1000.0, -2000.0], dtype=torch.float64))
    stacked = phi_from_logits(torch.stack([logits, logits]), y)  # [M, N, K] with y [N]
    assert stacked.shape == (2, 50)


def test_gaussian_logpdf_matches_scipy() -> None:
    x, mu, sd = np.array([0.3, -2.0, 5.0]), np.array([0.0, 1.0, 4.0]), np.array([1.0, 0.5, 2.0])
    np.testing.assert_allclose(gaussian_logpdf(x, mu, sd), norm.logpdf(x, mu, sd))


def test_keep_matrix_is_balanced_and_stable() -> None:
    keep = keep_matrix(8, 100, seed=3)
    assert (keep.sum(1) == 50).all()  # every model: half the pool
    assert (keep.sum(0) == 4).all()  # every point: IN for half the models
    assert not (keep[0] & keep[1]).any()  # complementary pair
    np.testing.assert_array_equal(keep_matrix(4, 100, seed=3), keep[:4])  # prefix-stable
    assert not np.array_equal(keep_matrix(8, 100, seed=4), keep)
    odd = keep_matrix(6, 101, seed=0)  # odd pool: each pair leaves one point out
    assert (odd.sum(1) == 50).all()
    assert odd.sum(0).max() == 3
    assert odd.sum(0).min() >= 2


def synthetic(n=20000, n_models=64, delta=2.0, sd=1.0, seed=0):
    """Per-example phi ~ N(mu_i + delta * IN, sd^2), mu_i ~ N(0, 3^2) (hard for one global
    threshold); half the target's points are members."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 3, n)
    keep = keep_matrix(n_models, n, seed)
    phi = mu[None] + delta * keep + rng.normal(0, sd, (n_models, n))
    is_member = np.r_[np.ones(n // 2, int), np.zeros(n - n // 2, int)]
    phi_t = mu + delta * is_member + rng.normal(0, sd, n)
    return phi, keep, phi_t, is_member


@pytest.mark.parametrize("fix_variance", [True, False])
@pytest.mark.parametrize("mode", ["online", "offline"])
def test_planted_shift_recovers_the_expected_tpr(mode, fix_variance) -> None:
    """Equal variances: the LR test is a per-example threshold on phi - mu_i, so at FPR a the
    TPR is 1 - Phi(z_{1-a} - delta) (Neyman-Pearson); LiRA with estimated Gaussians gets there
    within sampling error, a global threshold on phi does not come close."""
    delta = 2.0
    phi, keep, phi_t, is_member = synthetic(delta=delta)
    g = fit_gaussians(phi, keep, fix_variance)
    np.testing.assert_allclose(g["n_in"], 32)
    np.testing.assert_allclose(g["n_out"], 32)
    scores = (online_scores if mode == "online" else offline_scores)(phi_t, g)
    tol = 0.05 if fix_variance else 0.07  # per-example variances: more estimation noise
    for fpr in (0.01, 0.1):
        expected = 1 - norm.cdf(norm.ppf(1 - fpr) - delta)
        assert metrics.tpr_at_fpr(scores, is_member, fpr) == pytest.approx(expected, abs=tol)
    auc = metrics.roc_auc(scores, is_member)
    assert auc == pytest.approx(norm.cdf(delta / np.sqrt(2)), abs=0.01)
    assert metrics.roc_auc(phi_t, is_member) < auc - 0.15  # global threshold


def test_no_shift_is_chance() -> None:
    phi, keep, phi_t, is_member = synthetic(n=4000, delta=0.0)
    g = fit_gaussians(phi, keep, True)
    assert metrics.roc_auc(online_scores(phi_t, g), is_member) == pytest.approx(0.5, abs=0.03)


def test_fit_gaussians_shapes_and_small_counts() -> None:
    phi, keep, phi_t, _ = synthetic(n=50, n_models=2)  # one IN and one OUT model per point
    g = fit_gaussians(phi, keep, fix_variance=False)
    assert g["mu_in"].shape == (50, 1)
    assert np.isfinite(g["sd_in"]).all()
    assert np.isfinite(online_scores(phi_t, g)).all()
    with pytest.raises(Exception, match="n_shadow"):
        fit_gaussians(phi[:1], keep[:1])  # half the points have no OUT model
    multi = fit_gaussians(np.stack([phi, phi + 1], -1), keep, True)  # Q = 2 queries
    assert multi["mu_out"].shape == (50, 2)


def test_query_views() -> None:
    x = torch.zeros(2, 1, 28, 28)
    x[:, 0, 10, 5] = 1.0
    assert len(query_views(x, "none")) == 1
    flip = query_views(x, "flip")
    assert len(flip) == 2
    assert flip[1][0, 0, 10, 22] == 1.0
    shifts = query_views(x, "shift")
    assert len(shifts) == 9
    assert torch.equal(shifts[0], x)
    assert all(v.shape == x.shape for v in shifts)
    moved = {tuple(torch.nonzero(v[0, 0])[0].tolist()) for v in shifts}
    assert moved == {(10 + dy, 5 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert len(query_views(x, "flip_shift")) == 18


def test_registry_entry() -> None:
    a = ATTACKS["lira"]
    assert a.check is not None
    assert a.shadows(None) == 0  # no calibration shadow models


# --------------------------------------------------------------------------- end to end
LIRA_TINY = ["attacks=[lira]", "attack.lira.n_shadow=4", "attack.bootstrap=20"]


def test_lira_end_to_end(tmp_path) -> None:
    cache = f"attack.lira.cache_dir={tmp_path}/cache"
    first = run_experiment("single", tiny(tmp_path, *LIRA_TINY, cache))
    m = next(iter(first.values())).metrics
    for key in (
        "auc", "acc_best", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "tpr_at_fpr_0.0001",
        "auc_ci_low", "auc_ci_high", "n_shadow", "shadow_models_per_min", "kl_loss",
    ):  # fmt: skip
        assert f"attack/lira/{key}" in m, key
    assert m["attack/lira/n_shadow"] == 4
    assert m["attack/lira/shadow_models_trained"] == 4
    assert m["attack/lira/shadow_train_size"] == 64  # the target's member count
    client = client_for(tmp_path)
    (run,) = all_runs(client)
    assert run.data.metrics["attack/lira/auc"] == m["attack/lira/auc"]
    # the logged AUC is scikit-learn's on the logged per-sample scores
    csv = client.download_artifacts(run.info.run_id, "scores/lira.csv", str(tmp_path))
    table = np.genfromtxt(csv, delimiter=",", names=True)
    assert m["attack/lira/auc"] == pytest.approx(roc_auc_score(table["is_member"], table["score"]))
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/lira_phi_hist.png", "plots/lira_score_hist.png", "plots/roc_loglog.png"} <= arts
    assert len(list((tmp_path / "cache" / "lira_shadow").iterdir())) == 4
    path = client.download_artifacts(run.info.run_id, "lira/summary.json", str(tmp_path))
    summary = json.loads(Path(path).read_text())
    assert summary["training_path"].startswith("farm/")
    assert summary["pool_size"] == 128


@pytest.mark.slow
def test_lira_cache_reuse_end_to_end(tmp_path) -> None:
    """Same config: every shadow model comes from the cache (same scores); a changed training
    setting never reuses them."""
    cache = f"attack.lira.cache_dir={tmp_path}/cache"

    def lira(*extra: str) -> dict:
        res = run_experiment("single", tiny(tmp_path, *LIRA_TINY, cache, *extra))
        return next(iter(res.values())).metrics

    first = lira()
    again = lira()
    assert again["attack/lira/shadow_models_cached"] == 4
    assert again["attack/lira/shadow_models_trained"] == 0
    assert again["attack/lira/auc"] == first["attack/lira/auc"]
    assert "attack/lira/shadow_models_per_min" not in again  # nothing trained: not reported
    changed = lira("target.lr=0.002")
    assert changed["attack/lira/shadow_models_trained"] == 4
    more = lira("attack.lira.n_shadow=6")  # the first 4 (same pairs) are reused
    assert more["attack/lira/shadow_models_cached"] == 4
    assert more["attack/lira/shadow_models_trained"] == 2
    # a regime the farm does not implement (L2 countermeasure): Lightning fits, own entries
    l2 = lira("target.l2=0.001", "attack.lira.n_shadow=2")
    assert l2["attack/lira/shadow_models_trained"] == 2


def test_farm_spec_follows_the_target_config() -> None:
    from lit_mia import config

    nat = farm_spec(config.load("single", ["target.optimizer=sgd", "data.batch_size=64"]), 3)
    assert (nat.regime, nat.optimizer, nat.batch_size, nat.epochs) == ("natural", "sgd", 64, 3)
    assert not nat.adversarial
    pgd = farm_spec(config.load("single", ["target=pgd"]), 5)
    assert pgd.adversarial
    assert (pgd.eps, pgd.steps, pgd.step_size) == (0.1, 8, 0.02)
    for extra in (["target=trades"], ["target=pgd", "target.ratio=0.5"], ["target.l2=0.01"],
                  ["data.augment=shift"]):  # fmt: skip
        assert farm_spec(config.load("single", extra), 1) is None, extra


# --------------------------------------------------------------------------- bad input
BAD = [
    ("online-one-shadow", ["attack.lira.n_shadow=1"], ["attack.lira.n_shadow", ">= 2", "online"]),
    (
        "offline-one-shadow",
        ["attack.lira.n_shadow=1", "attack.lira.mode=offline"],
        ["attack.lira.n_shadow", ">= 2"],
    ),
    ("mode", ["attack.lira.mode=both"], ["attack.lira.mode", "valid: offline, online"]),
    ("farm", ["attack.lira.farm=gpu"], ["attack.lira.farm", "valid: auto, loop, vmap"]),
    (
        "augment",
        ["attack.lira.augment=rotate"],
        ["attack.lira.augment", "valid: flip, flip_shift, none, shift"],
    ),
    ("epochs", ["attack.lira.epochs=0"], ["attack.lira.epochs"]),
    ("cache-dir", ["attack.lira.cache_dir={tmp}/file/cache"], ["attack.lira.cache_dir"]),
]


@pytest.mark.parametrize(("extra", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2(extra, expected, tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("not a directory")
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    uri = f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"
    rc = cli.main(["run", "single", "attacks=[lira]", *args, uri])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # failed before any run


# ---------------------------------------------------------------- the attack contract
class TestLiRAContract(AttackTester):
    attack = "lira"

"""RMIA (lit_mia/attacks/rmia.py) and the reference-budget curve (attacks/ref_budget.py): the
score against a brute-force definition, the offline correction, planted-signal and no-signal
synthetic problems, the shared farm end to end through MLflow, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lit_mia import cli
from lit_mia.attacks.ref_budget import budgets
from lit_mia.attacks.registry import ATTACKS
from lit_mia.attacks.rmia import choose_a, prior_prob, rmia_scores, true_class_prob
from lit_mia.metrics import heldout
from lit_mia.run import run_experiment
from tests.test_run import all_runs, client_for, tiny


# --------------------------------------------------------------------------- pure math
def test_scores_match_the_definition() -> None:
    rng = np.random.default_rng(0)
    n, p, q, gamma = 30, 50, 2, 1.3
    px, prx = rng.random((n, q)), rng.random((n, q)) + 0.1
    pz, prz = rng.random((p, q)), rng.random((p, q)) + 0.1
    got = rmia_scores(px, prx, pz, prz, gamma)
    want = np.zeros(n)
    for i in range(n):
        for j in range(q):
            lr = (px[i, j] / prx[i, j]) / (pz[:, j] / prz[:, j])
            want[i] += np.mean(lr >= gamma) / q
    np.testing.assert_allclose(got, want)
    assert np.all((got >= 0) & (got <= 1))


def test_prior_online_offline() -> None:
    p = np.array([[[0.2]], [[0.6]], [[0.9]]])  # 3 references, 1 candidate, 1 query
    assert prior_prob(p, None, "online", 0.0)[0, 0] == pytest.approx(np.mean([0.2, 0.6, 0.9]))
    out = np.array([[True], [False], [True]])
    a = 0.4
    want = 0.5 * ((1 + a) * np.mean([0.2, 0.9]) + (1 - a))
    assert prior_prob(p, out, "offline", a)[0, 0] == pytest.approx(want)
    # a = 1: p(x) = p_OUT(x) (no correction)
    assert prior_prob(p, out, "offline", 1.0)[0, 0] == pytest.approx(0.55)


def test_true_class_prob() -> None:
    logits = np.array([[[2.0, 0.0, -1.0]], [[0.0, 0.0, 0.0]]])  # [2 points, 1 query, 3]
    y = np.array([0, 2])
    got = true_class_prob(logits, y)
    np.testing.assert_allclose(true_class_prob(np.stack([logits] * 3), y), np.stack([got] * 3))
    e = np.exp([2.0, 0.0, -1.0])
    np.testing.assert_allclose(got[:, 0], [e[0] / e.sum(), 1 / 3])


def _planted(shift: float, seed: int = 0, n: int = 400, refs: int = 8, pop: int = 300):
    """Target and reference probabilities of a problem where members' target probability is
    raised by `shift` (in logit units) relative to what references predict."""
    rng = np.random.default_rng(seed)
    hard = rng.normal(0, 1.5, n)  # per-example difficulty, seen by every model
    member = np.r_[np.ones(n // 2, bool), np.zeros(n - n // 2, bool)]
    keep = np.zeros((refs, n), bool)
    for r in range(0, refs, 2):
        perm = rng.permutation(n)
        keep[r, perm[: n // 2]] = True
        keep[r + 1, perm[n // 2 :]] = True

    def prob(logit):
        return 1 / (1 + np.exp(-logit))

    ref_x = prob(hard[None] + shift * keep + rng.normal(0, 0.3, (refs, n)))[..., None]
    p_x = prob(hard + shift * member + rng.normal(0, 0.3, n))[:, None]
    hz = rng.normal(0, 1.5, pop)
    ref_z = prob(hz[None] + rng.normal(0, 0.3, (refs, pop)))[..., None]
    p_z = prob(hz + rng.normal(0, 0.3, pop))[:, None]
    return p_x, ref_x, p_z, ref_z, keep, member


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_planted_signal_and_no_signal(mode) -> None:
    p_x, ref_x, p_z, ref_z, keep, member = _planted(2.0)
    out = None if mode == "online" else ~keep
    s = rmia_scores(
        p_x, prior_prob(ref_x, out, mode, 0.5), p_z, prior_prob(ref_z, None, mode, 0.5), 1.0
    )
    auc = roc_auc_score(member, s)
    # the raw target probability (the strongest trivial baseline) ignores per-example hardness
    base = roc_auc_score(member, p_x[:, 0])
    assert auc > 0.85 and auc > base + 0.05, (auc, base)
    p_x, ref_x, p_z, ref_z, keep, member = _planted(0.0, seed=1)
    s = rmia_scores(
        p_x, prior_prob(ref_x, out, mode, 0.5), p_z, prior_prob(ref_z, None, mode, 0.5), 1.0
    )
    assert abs(roc_auc_score(member, s) - 0.5) < 0.08


def test_choose_a_is_the_best_on_the_stand_in() -> None:
    _, ref_x, _, ref_z, keep, _ = _planted(2.0)
    a, auc = choose_a(ref_x, keep, ref_z, 1.0)
    assert 0 <= a <= 1 and auc > 0.8
    from lit_mia.attacks.rmia import A_GRID

    ok = (~keep[1:]).any(0)
    for other in A_GRID:
        px = prior_prob(ref_x[1:, ok], ~keep[1:, ok], "offline", other)
        pz = prior_prob(ref_z[1:], None, "offline", other)
        s = rmia_scores(ref_x[0, ok], px, ref_z[0], pz, 1.0)
        assert roc_auc_score(keep[0, ok], s) <= auc + 1e-12


def test_budgets() -> None:
    assert budgets(16) == [1, 2, 4, 8, 16]
    assert budgets(6) == [1, 2, 4, 6]
    assert budgets(2) == [1, 2]


# --------------------------------------------------------------------------- end to end
RMIA_TINY = [
    "attacks=[lira,rmia,ref_budget]",
    "attack.lira.n_shadow=4",
    "attack.rmia.n_references=4",
    "attack.ref_budget.max_references=4",
    "attack.bootstrap=20",
    "attack.alpha=0.01",
]


def test_rmia_and_budget_share_the_farm_end_to_end(tmp_path) -> None:
    cache = f"attack.lira.cache_dir={tmp_path}/cache"
    res = run_experiment("single", tiny(tmp_path, *RMIA_TINY, cache))
    m = next(iter(res.values())).metrics
    for key in ("auc", "auc_ci_low", "tpr_at_fpr_0.001", "eps_lb", "mu_lb", "ppv_at_prior_0.01"):
        assert f"attack/rmia/{key}" in m, key
    assert m["attack/rmia/n_references"] == 4 and m["attack/rmia/population"] == 128
    # trained once: LiRA (first) trained 4 models, nothing else trained more
    assert m["attack/lira/shadow_models_trained"] == 4
    assert len(list((tmp_path / "cache" / "lira_shadow").iterdir())) == 4
    client = client_for(tmp_path)
    (run,) = all_runs(client)
    hist = client.get_metric_history(run.info.run_id, "attack/ref_budget/rmia_online/auc")
    assert [h.step for h in sorted(hist, key=lambda h: h.step)] == [0, 1, 2]  # budgets 1, 2, 4
    lira_1 = client.get_metric_history(run.info.run_id, "attack/ref_budget/lira_online/auc")
    assert sorted(h.step for h in lira_1) == [1, 2]  # NaN (no IN + OUT model at 1) not logged
    # the full-budget curve points are the stand-alone attacks' AUCs (same models, settings)
    assert m["attack/ref_budget/rmia_online/auc_at_max"] == pytest.approx(m["attack/rmia/auc"])
    assert m["attack/ref_budget/lira_online/auc_at_max"] == pytest.approx(m["attack/lira/auc"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/ref_budget_auc.png" in arts
    csv = client.download_artifacts(run.info.run_id, "scores/rmia.csv", str(tmp_path))
    table = np.genfromtxt(csv, delimiter=",", names=True)
    assert m["attack/rmia/auc"] == pytest.approx(roc_auc_score(table["is_member"], table["score"]))
    # attack.alpha reaches the privacy bounds of every attack (metrics/privacy.py)
    want = heldout.eps_lb(table["score"], table["is_member"], 0.01, 1e-5)
    assert m["attack/rmia/eps_lb"] == pytest.approx(want)
    assert want < heldout.eps_lb(table["score"], table["is_member"], 0.05, 1e-5) or want == 0


def test_registry_entries() -> None:
    assert ATTACKS["rmia"].check is not None and ATTACKS["ref_budget"].check is not None


# --------------------------------------------------------------------------- bad input
BAD = [
    ("zero-refs", ["attacks=[rmia]", "attack.rmia.n_references=0"], ["attack.rmia.n_references"]),
    ("too-many", ["attacks=[rmia]", "attack.rmia.n_references=300"], ["in [1, 256]"]),
    (
        "offline-a-choice",
        ["attacks=[rmia]", "attack.rmia.mode=offline", "attack.rmia.n_references=2"],
        ["attack.rmia.n_references", ">= 3"],
    ),
    ("mode", ["attacks=[rmia]", "attack.rmia.mode=both"], ["valid: offline, online"]),
    ("gamma", ["attacks=[rmia]", "attack.rmia.gamma=0"], ["attack.rmia.gamma"]),
    ("a", ["attacks=[rmia]", "attack.rmia.a=1.5"], ["attack.rmia.a"]),
    ("budget", ["attacks=[ref_budget]", "attack.ref_budget.max_references=1"], ["max_references"]),
    ("delta", ["attack.delta=0"], ["attack.delta", "in (0, 1)"]),
    ("delta-high", ["attack.delta=1.5"], ["attack.delta", "in (0, 1)"]),
    ("alpha", ["attack.alpha=1"], ["attack.alpha", "in (0, 1)"]),
]


@pytest.mark.parametrize(("extra", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2(extra, expected, tmp_path, capsys) -> None:
    uri = f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"
    rc = cli.main(["run", "single", *extra, uri])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # failed before any run

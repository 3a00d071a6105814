"""Inference-classifier attacks: model_infer, confidence_infer (CCS'19 Table 7) and shadow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from lit_mia import cli, config, metrics
from lit_mia.attacks.classifier import (
    decision_acc_ci,
    fit_classifier,
    member_log_odds,
    member_probability,
)
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.infer import (
    class_split,
    class_threshold_decisions,
    confidence_infer,
    infer_data,
    model_infer,
)
from lit_mia.attacks.shadow import shadow_features
from lit_mia.errors import ConfigError
from lit_mia.predictor import Predictor
from lit_mia.run import run_experiment
from lit_mia.training import build_data, eval_sets, fit_target
from tests.test_run import TINY

# ---------------------------------------------------------------- pure pieces


def test_class_split_is_balanced_disjoint_and_in_order():
    rng = np.random.default_rng(0)
    ml, nl = rng.integers(0, 3, 60), rng.integers(0, 3, 50)
    cs = class_split(ml, nl, 4, 3)
    for c in range(3):
        n_test = min((ml == c).sum(), (nl == c).sum()) - 4
        assert cs.train_in[c].size == cs.train_out[c].size == 4
        assert cs.test_in[c].size == cs.test_out[c].size == n_test
        assert (ml[np.r_[cs.train_in[c], cs.test_in[c]]] == c).all()
        assert (nl[np.r_[cs.train_out[c], cs.test_out[c]]] == c).all()
        assert np.array_equal(cs.train_in[c], np.flatnonzero(ml == c)[:4])
        assert not set(cs.train_in[c]) & set(cs.test_in[c])


def test_class_split_names_key_class_and_counts():
    ml = np.array([0] * 10 + [1] * 3)
    nl = np.array([0] * 10 + [1] * 8)
    with pytest.raises(ConfigError) as e:
        class_split(ml, nl, 3, 2)
    msg = str(e.value)
    assert "attack.infer.n_train_per_class=3" in msg
    assert "class 1 has 3 members and 8 non-members" in msg


def brute_force_threshold(s: np.ndarray, m: np.ndarray) -> float:
    """Best balanced accuracy over every candidate threshold, ties -> the largest."""
    best, best_t = -1.0, np.inf
    for t in sorted(np.r_[np.unique(s), np.inf], reverse=True):
        pred = s >= t
        acc = 0.5 * (pred[m == 1].mean() + 1 - pred[m == 0].mean())
        if acc > best + 1e-12:
            best, best_t = acc, t
    return best_t


def test_confidence_infer_thresholds_match_brute_force():
    rng = np.random.default_rng(1)
    n, k = 400, 4
    labels = rng.integers(0, k, n)
    member = rng.integers(0, 2, n)
    scores = np.round(rng.normal(member * (labels + 1) * 0.3, 1.0), 1)  # ties on purpose
    train = rng.random(n) < 0.5
    thr, dec = class_threshold_decisions(
        scores[train], member[train], labels[train], scores[~train], labels[~train]
    )
    for c in range(k):
        sel = train & (labels == c)
        assert thr[c] == brute_force_threshold(scores[sel], member[sel])
    expected = scores[~train] >= np.array([thr[c] for c in labels[~train]])
    assert np.array_equal(dec, expected)


def test_decision_acc_ci_contains_point_and_narrows():
    rng = np.random.default_rng(2)
    widths = []
    for n in (100, 2000):
        m = np.r_[np.ones(n), np.zeros(n)]
        d = rng.random(2 * n) < np.where(m == 1, 0.7, 0.4)
        lo, hi = decision_acc_ci(d, m, 200, 0.95, seed=0)
        acc = metrics.decision_metrics(d, m)["acc"]
        assert lo <= acc <= hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2


def test_classifier_is_seeded_and_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    kw = dict(hidden=[16], epochs=30, batch_size=32, lr=1e-2, seed=3)
    a, b = fit_classifier(x, y, **kw), fit_classifier(x, y, **kw)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    p, lo = member_probability(a, x), member_log_odds(a, x)
    assert ((p > 0.5) == (lo > 0)).all()
    assert ((p > 0.5) == y).mean() > 0.9


def test_shadow_features():
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]])
    f = shadow_features(logits, torch.tensor([1, 0]), "sorted", 2)
    p = torch.softmax(logits.double(), 1).numpy()
    np.testing.assert_allclose(f, [[p[0, 1], p[0, 2]], [p[1, 2], p[1, 0]]])
    g = shadow_features(logits, torch.tensor([1, 0]), "label", 3)
    assert g.shape == (2, 6) and g[0, 4] == 1 and g[1, 3] == 1
    assert shadow_features(logits, torch.tensor([1, 0]), "sorted", 10).shape == (2, 3)


# ---------------------------------------------------------------- on an overfitting target


@pytest.fixture(scope="module")
def overfit_ctx():
    """An MLP (128-128) trained 30 epochs on 400 MNIST digits: train acc 1, test ~0.85."""
    torch.manual_seed(0)
    cfg = config.load(
        "single",
        [
            "data.name=mnist5k",
            "data.n_members=400",
            "data.n_nonmembers=400",
            "data.n_validation=0",
            "data.n_shadow=0",
            "data.batch_size=32",
            "net.name=mlp",
            "net.width=0.5",
            "trainer.max_epochs=30",
            "trainer.enable_progress_bar=false",
            "attack.calibrate=false",
            "attack.bootstrap=50",
            "attack.steps=3",
            "attack.infer.n_train_per_class=20",
            "attack.infer.features=[benign,untargeted]",
            "attack.infer.epochs=60",
            "attack.infer.batch_size=32",
        ],
    )
    bundle, split = build_data(cfg)
    target = fit_target(cfg, bundle, split.members, None)
    sets = eval_sets(bundle, split.members, split.nonmembers, None)
    n = len(sets["members"][1])
    eval_idx = {"members": split.members[:n], "nonmembers": split.nonmembers[:n]}
    pred = Predictor(target, sets, 500)
    return AttackContext(cfg, bundle, split, target, pred, eval_idx, fit=None, make_net=None)


@pytest.mark.slow
def test_model_infer_beats_chance_on_overfit_target(overfit_ctx):
    ctx = overfit_ctx
    assert ctx.pred.accuracy("members") - ctx.pred.accuracy("nonmembers") > 0.05
    res = model_infer(ctx)
    m = res.metrics
    assert m["auc"] > 0.6 and m["acc"] > 0.55, m
    assert m["acc_ci_low"] <= m["acc"] <= m["acc_ci_high"]
    assert m["benign/acc"] == m["acc"] and "untargeted/auc" in m
    assert res.scores.size == res.is_member.size == res.index.size == int(m["n_test"])
    assert res.is_member.sum() * 2 == res.is_member.size  # balanced test set
    # the test rows are members / non-members of the target as labelled
    members = set(ctx.split.members.tolist())
    assert all((int(i) in members) == bool(b) for i, b in zip(res.index, res.is_member))
    assert "infer/model_infer_per_class.md" in res.texts


@pytest.mark.slow
def test_confidence_infer_on_same_split(overfit_ctx):
    res = confidence_infer(overfit_ctx)
    m = res.metrics
    assert m["auc"] > 0.6 and m["acc"] > 0.55, m
    assert {"benign/acc", "untargeted/acc", "acc_class_0"} <= set(m)
    d = infer_data(overfit_ctx)  # the rows model_infer tests on, in the same order
    assert np.array_equal(d.idx[~d.train], res.index)


# ---------------------------------------------------------------- end to end, bad input


def test_attacks_end_to_end_log_to_mlflow(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    res = run_experiment(
        "single",
        [
            *TINY,
            "data.name=digits",
            "net.name=mlp",
            "net.width=0.25",
            f"tracking.uri={uri}",
            "attacks=[model_infer,confidence_infer,shadow]",
            "attack.calibrate=false",
            "attack.bootstrap=20",
            "attack.infer.n_train_per_class=1",
            "attack.infer.features=[benign,targeted]",
            "attack.infer.epochs=2",
            "attack.shadow.epochs=2",
            "attack.shadow.n_models=2",
            "trainer.max_epochs=1",
        ],
    )
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(res["natural"].run_id)
    m = run.data.metrics
    for key in (
        "attack/model_infer/acc",
        "attack/model_infer/acc_best",
        "attack/model_infer/auc_ci_low",
        "attack/model_infer/benign/acc",
        "attack/model_infer/targeted/acc",
        "attack/model_infer/targeted/acc_class_9",
        "attack/confidence_infer/acc",
        "attack/confidence_infer/benign/acc_ci_high",
        "attack/shadow/acc",
        "attack/shadow/auc",
        "attack/shadow/n_models",
    ):
        assert key in m, key
    assert "attack/confidence_infer/targeted/acc" not in m
    assert m["attack/model_infer/acc"] == m["attack/model_infer/benign/acc"]
    assert m["attack/shadow/n_models"] == 2
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "infer")}
    assert {"infer/model_infer_per_class.md", "infer/confidence_infer_per_class.md"} <= arts
    scores = {a.path for a in client.list_artifacts(run.info.run_id, "scores")}
    assert {"scores/model_infer.csv", "scores/shadow.csv"} <= scores


BAD = [
    (
        ["attacks=[model_infer]", "data.n_members=100", "attack.infer.n_train_per_class=20"],
        ["attack.infer.n_train_per_class=20", "class ", "members and", "non-members"],
    ),
    (
        ["attacks=[model_infer]", "attack.infer.features=[benign,nope]"],
        ["attack.infer.features", "'nope'", "valid: benign, targeted, untargeted"],
    ),
    (
        ["attacks=[confidence_infer]", "attack.infer.features=[targeted]"],
        ["attack.infer.features", "benign or untargeted"],
    ),
    (["attacks=[shadow]", "attack.shadow.n_models=0"], ["attack.shadow.n_models", ">= 1"]),
    (
        ["attacks=[shadow]", "attack.shadow.features=top"],
        ["attack.shadow.features", "valid: label, sorted"],
    ),
    (["attacks=[model_infer]", "attack.infer.hidden=[0]"], ["attack.infer.hidden"]),
]


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[b[1][0] for b in BAD])
def test_bad_input_exits_2(argv, expected, tmp_path, capsys):
    rc = cli.main(["run", "single", *argv, f"tracking.uri=sqlite:///{tmp_path}/mlflow.db"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any run started

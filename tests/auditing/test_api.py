"""`lit_mia.audit` (lit_mia/auditing/api.py) on models trained here, outside lit_mia.

Fixture: scikit-learn digits as flat [N, 64] rows in [0, 1] (not images: the API reshapes for
the model), an MLP fitted to 100 members until it memorises them. Properties checked: members
leak (AUC bootstrap lower bound > 0.5, for I_B and LiRA with shadow models from the user's
train_fn), a model that never saw the "members" stays at chance (the interval holds 0.5), the
logged AUC is sklearn's on the returned per-sample scores, runs end FINISHED, and bad input is
a one-line ConfigError before any MLflow run exists."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import TensorDataset

import lit_mia
from lit_mia.errors import ConfigError
from lit_mia.tracking import client_for, resolve_uri

N = 100


def train(x: torch.Tensor, y: torch.Tensor, seed: int) -> nn.Module:
    """The user's recipe: full-batch Adam until the 100 training rows are memorised."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(80):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


class LitMLP(pl.LightningModule):
    """The same recipe as a LightningModule (module_factory)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


@pytest.fixture(scope="module")
def data():
    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.int64)
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    part = {k: p[i * 2 * N : (i + 1) * 2 * N] for i, k in enumerate(("eval", "shadow", "other"))}
    mem, non = part["eval"][:N], part["eval"][N:]
    return {
        "members": (x[mem], y[mem]),
        "nonmembers": (x[non], y[non]),
        "shadow": (x[part["shadow"]], y[part["shadow"]]),
        "other": (x[part["other"][:N]], y[part["other"][:N]]),
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("audit") / "mlruns")


def runs(uri: str) -> list:
    client = client_for(resolve_uri(uri)[0])
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_overfit_members_leak_ib_and_lira(data, store):
    model = train(*data["members"], seed=0).train()
    res = lit_mia.audit(
        model,
        data["members"],
        data["nonmembers"],
        attacks=["ib", "lira"],
        shadow_data=data["shadow"],
        train_fn=train,
        tracking_uri=store,
        overrides=["attack.lira.n_shadow=4", "attack.bootstrap=100"],
    )
    assert model.training  # the user's mode is restored
    assert res.metrics["target/train_acc"] == 1.0
    for name in ("ib", "lira"):
        assert res.metric(name, "auc_ci_low") > 0.5, res.table()
        s = res.scores[name]
        assert s["is_member"].tolist() == [1] * N + [0] * N
        assert sorted(s["index"][:N]) == list(range(N)) == sorted(s["index"][N:])
        assert res.metric(name, "auc") == pytest.approx(roc_auc_score(s["is_member"], s["score"]))
    assert "acc_calibrated" in res.attacks["ib"].metrics  # shadow model 0 from train_fn
    assert "| lira |" in res.table()
    (run,) = [r for r in runs(store) if r.info.run_id == res.run_id]
    assert run.info.status == "FINISHED"
    assert run.data.metrics["attack/lira/auc"] == pytest.approx(res.metric("lira", "auc"))
    assert run.data.params["target.name"] == "external"
    assert run.data.params["attacks"]
    arts = client_for(resolve_uri(store)[0]).list_artifacts(res.run_id, "scores")
    assert {a.path for a in arts} == {"scores/ib.csv", "scores/lira.csv"}


def test_model_that_never_saw_members_is_at_chance(data, store):
    model = train(*data["other"], seed=1)
    members = TensorDataset(*data["members"])  # a torch Dataset works as well as (x, y)
    res = lit_mia.audit(model, members, data["nonmembers"], attacks=["ib"], tracking_uri=store)
    lo, hi = res.metric("ib", "auc_ci_low"), res.metric("ib", "auc_ci_high")
    assert lo < 0.5 < hi, res.table()
    assert "acc_calibrated" not in res.attacks["ib"].metrics  # no recipe: oracle numbers only


def test_module_factory_trains_the_calibration_shadow(data, store):
    model = train(*data["members"], seed=0)
    res = lit_mia.audit(
        model,
        data["members"],
        data["nonmembers"],
        attacks=["ib"],
        shadow_data=data["shadow"],
        module_factory=LitMLP,
        tracking_uri=store,
        overrides={"trainer": {"max_epochs": 20}, "data": {"batch_size": 100}},
    )
    assert res.metrics["shadow/train_acc"] > res.metrics["shadow/test_acc"]
    assert 0.5 < res.metric("ib", "acc_calibrated") <= 1.0


def _bad(data, case):
    x, y = data["members"]
    xn, yn = data["nonmembers"]
    model = nn.Sequential(nn.Linear(64, 10))
    kw = dict(attacks=["ib"])
    if case == "lira-without-recipe":
        kw["attacks"] = ["lira"]
    elif case == "calibrate-without-recipe":
        kw["overrides"] = ["attack.calibrate=true"]
        kw["shadow_data"] = data["shadow"]
    elif case == "overlap":
        xn = torch.cat([xn[:-3], x[:3]])
    elif case == "range":
        x = x * 16
    elif case == "labels":
        y = y + 5
    elif case == "shape":
        xn = xn[:, :32]
    elif case == "set-by-data":
        kw["overrides"] = ["data.n_members=5"]
    elif case == "unknown-attack":
        kw["attacks"] = ["nope"]
    elif case == "small-shadow-pool":
        kw.update(shadow_data=(data["shadow"][0][:50], data["shadow"][1][:50]), train_fn=train)
    elif case in ("dp_audit", "rmia"):
        kw["attacks"] = [case]
    elif case == "logits":
        model = nn.Sequential(nn.Linear(64, 10), nn.Flatten(0))
    return model, (x, y), (xn, yn), kw


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("lira-without-recipe", ["['lira']", "train_fn=", "module_factory="]),
        ("calibrate-without-recipe", ["attack.calibrate=true", "train_fn="]),
        ("overlap", ["members and nonmembers share 3 identical samples"]),
        ("range", ["members: x must lie in [0, 1]"]),
        ("labels", ["members: labels must be in [0, 10)"]),
        ("shape", ["one sample shape"]),
        ("set-by-data", ["data.n_members is set by the data"]),
        ("unknown-attack", ["unknown attack", "'nope'", "valid: "]),
        ("small-shadow-pool", ["shadow_data holds 50 samples", ">= 200"]),
        ("logits", ["logits [B, K]"]),
        ("dp_audit", ["['dp_audit'] retrain the target", "lit-mia run"]),
        ("rmia", ["['rmia']", "train_fn="]),
    ],
)
def test_bad_input_is_one_line_and_starts_no_run(data, tmp_path, case, words):
    model, members, nonmembers, kw = _bad(data, case)
    uri = str(tmp_path / "mlruns")
    with pytest.raises(ConfigError) as e:
        lit_mia.audit(model, members, nonmembers, tracking_uri=uri, **kw)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert all(w in msg for w in words), msg
    assert not (tmp_path / "mlruns").exists()  # refused before any MLflow store was touched


def test_lazy_attribute():
    from lit_mia import audit
    from lit_mia.auditing.api import audit as api_audit

    assert audit is api_audit is lit_mia.audit
    assert np.all([hasattr(lit_mia, "AuditResult")])


def test_failure_inside_the_run_ends_it_failed(data, store, monkeypatch):
    """An attack (here a registry entry added for the test) that trains a reference model
    through ctx.fit, with no recipe given: one-line error naming it, the run ends FAILED."""
    from lit_mia.attacks import registry
    from lit_mia.attacks.base import Attack

    def needs_a_model(ctx):
        ctx.fit(ctx.split.members, 0)

    monkeypatch.setitem(registry.ATTACKS, "needs_fit", Attack("needs_fit", needs_a_model))
    model = train(*data["members"], seed=0)
    before = {r.info.run_id for r in runs(store)}
    with pytest.raises(ConfigError, match=r"^attack needs_fit trains shadow/reference models"):
        lit_mia.audit(model, data["members"], data["nonmembers"], ["needs_fit"], tracking_uri=store)
    (run,) = [r for r in runs(store) if r.info.run_id not in before]
    assert run.info.status == "FAILED"

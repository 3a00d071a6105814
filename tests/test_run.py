"""End-to-end `lit-mia run` on tiny sizes into a temporary MLflow store, read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from lit_mia import cli
from lit_mia.run import run_experiment
from tests.conftest import all_runs, client_for, tiny

EXPECTED = [
    "target/train_acc",
    "target/test_acc",
    "target/adv_train_acc",
    "target/adv_test_acc",
    *(
        f"attack/{a}/{m}"
        for a in ("ib", "ia")
        for m in (
            "auc",
            "acc_best",
            "advantage_best",
            "precision",
            "recall",
            "auprc",
            "kl_loss",
            "tpr_at_fpr_0.01",
            "tpr_at_fpr_0.001",
            "acc_calibrated",
        )
    ),
]


def test_default_experiment_end_to_end(tmp_path, capsys):
    code = cli.main(["run", "default", *tiny(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| natural |" in out
    assert "| pgd |" in out

    client = client_for(tmp_path)
    runs = all_runs(client)
    assert len(runs) == 3  # parent + natural + pgd
    assert {r.info.status for r in runs} == {"FINISHED"}
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parent) == 1
    assert len(children) == 2
    assert all(c.data.tags["mlflow.parentRunId"] == parent[0].info.run_id for c in children)

    for run in children:
        m, p, tags = run.data.metrics, run.data.params, run.data.tags
        missing = [k for k in EXPECTED if k not in m]
        assert not missing, missing
        csv = client.download_artifacts(run.info.run_id, "scores/ib.csv", str(tmp_path))
        table = np.genfromtxt(csv, delimiter=",", names=True)  # logged AUC = sklearn's
        assert m["attack/ib/auc"] == pytest.approx(
            roc_auc_score(table["is_member"], table["score"])
        )
        fpr, tpr, _ = roc_curve(table["is_member"], table["score"])  # oracle acc = sklearn's
        assert m["attack/ib/acc_best"] == pytest.approx(0.5 * (1 + np.max(tpr - fpr)))
        assert p["data.n_members"] == "64"
        assert p["seed"] == "0"
        assert "git_sha" in tags
        assert "version.torch" in tags
        assert tags["seed"] == "0"
        # per-epoch metrics, step = epoch
        hist = client.get_metric_history(run.info.run_id, "train/acc")
        assert sorted(h.step for h in hist) == [0, 1]
        assert len(client.get_metric_history(run.info.run_id, "val/adv_acc")) == 2
        # attack metrics are logged exactly once
        assert len(client.get_metric_history(run.info.run_id, "attack/ib/auc")) == 1
        arts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "split", "scores", "plots", "checkpoints"} <= arts
        local = client.download_artifacts(run.info.run_id, "split/indices.json", str(tmp_path))
        split = json.loads(Path(local).read_text())
        sets = [set(split[k]) for k in ("members", "validation", "nonmembers", "shadow")]
        assert sum(map(len, sets)) == len(set().union(*sets)) == 64 + 32 + 64 + 128
        csv = client.download_artifacts(run.info.run_id, "scores/ia.csv", str(tmp_path))
        rows = np.genfromtxt(csv, delimiter=",", names=True)
        assert rows["is_member"].sum() == 64
        assert len(rows) == 128
    pgd_run = next(r for r in children if r.data.tags["lit_mia.target"] == "pgd")
    assert pgd_run.data.params["target.eps"] == "0.1"
    assert pgd_run.data.metrics["target/eval_eps"] == pytest.approx(0.1)


def test_same_seed_same_numbers(tmp_path):
    a = run_experiment("single", tiny(tmp_path / "a", "target.name=pgd", "attack.calibrate=false"))
    b = run_experiment("single", tiny(tmp_path / "b", "target.name=pgd", "attack.calibrate=false"))
    c = run_experiment(
        "single", tiny(tmp_path / "c", "target.name=pgd", "attack.calibrate=false", "seed=1")
    )
    assert a["pgd"].metrics == b["pgd"].metrics  # bit-identical
    assert a["pgd"].metrics != c["pgd"].metrics


def test_failure_ends_run_failed(tmp_path, monkeypatch):
    import lit_mia.run as run_mod

    def boom(*args, **kwargs):
        raise RuntimeError("attack exploded")

    monkeypatch.setattr(run_mod, "evaluate", boom)
    with pytest.raises(RuntimeError, match="attack exploded"):
        run_experiment("single", tiny(tmp_path, "attack.calibrate=false"))
    (run,) = all_runs(client_for(tmp_path))
    assert run.info.status == "FAILED"
    assert "attack exploded" in run.data.tags["error"]


def test_interrupt_ends_run_killed(tmp_path, monkeypatch):
    import lit_mia.run as run_mod

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "evaluate", interrupt)
    code = cli.main(["run", "single", *tiny(tmp_path, "attack.calibrate=false")])
    assert code == 130
    (run,) = all_runs(client_for(tmp_path))
    assert run.info.status == "KILLED"


def test_checkpoint_loads_weights_only(tmp_path):
    from lit_mia.training import load_state

    res = run_experiment("single", tiny(tmp_path, "attack.calibrate=false"))
    client = client_for(tmp_path)
    path = client.download_artifacts(res["natural"].run_id, "checkpoints/target.pt", str(tmp_path))
    state = load_state(path)
    assert any(k.endswith("weight") for k in state)


def test_labelled_targets_log_legal_metric_names(tmp_path):
    exp = tmp_path / "mixed.yaml"
    exp.write_text(
        "targets: ['pgd ratio=0', 'pgd ratio=0.5']\nattacks: [ib]\nnet: {name: lenet_mnist}\n"
    )
    res = run_experiment(str(exp), tiny(tmp_path, "attack.calibrate=false", "trainer.max_epochs=1"))
    assert list(res) == ["pgd ratio=0", "pgd ratio=0.5"]
    runs = all_runs(client_for(tmp_path))
    assert {r.info.status for r in runs} == {"FINISHED"}
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert "pgd ratio_0.5/attack/ib/auc" in parent.data.metrics
    names = {r.info.run_name for r in runs}
    assert "mixed/pgd ratio=0.5" in names


@pytest.mark.parametrize("regime", ["trades", "dist", "ibp", "diffai", "dual"])
def test_each_regime_logs_its_metrics_to_mlflow(tmp_path, regime):
    extra = [
        f"target={regime}",
        "net=mlp",
        "net.width=0.25",
        "trainer.max_epochs=2",
        "attack.calibrate=false",
    ]
    if regime in ("ibp", "diffai", "dual"):  # the eps schedule is theirs only
        extra += ["target.warmup_epochs=0", "target.ramp_epochs=1"]
    res = run_experiment("single", tiny(tmp_path, *extra))
    (run,) = all_runs(client_for(tmp_path))
    assert run.info.status == "FINISHED"
    assert run.info.run_id == res[regime].run_id
    m = run.data.metrics
    for key in ("target/test_acc", "target/adv_test_acc", "attack/ia/auc", "train/loss"):
        assert key in m, key
    if regime in ("ibp", "diffai", "dual"):
        assert m["target/ver_test_acc"] <= m["target/adv_test_acc"] + 1e-9
        assert "train/eps" in m
        assert "val/ver_acc" in m

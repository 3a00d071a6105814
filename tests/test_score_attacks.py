"""I_V, the I_A eps sweep, the leakage-over-training callback and the compare_by plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lit_mia import cli, config
from lit_mia.attacks.confidence import confidence_and_loss
from lit_mia.callbacks import LeakageCallback
from lit_mia.data.datasets import load_dataset
from lit_mia.perturb.pgd import AttackPGD, pgd
from lit_mia.predictor import Predictor
from lit_mia.run import run_experiment
from lit_mia.targets import build_target
from tests import helpers
from tests.test_run import all_runs, client_for, tiny

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _target(name, bundle, **kw):
    cfg = OmegaConf.merge(
        OmegaConf.structured(config.schema(name)),
        {"target": kw, "trainer": {"val_adv_steps": 2}},
    )
    return build_target(cfg, helpers.small_net(bundle, 0, "mlp", width=0.125), torch.arange(64))


@pytest.mark.parametrize("name", ["ibp", "diffai"])
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_verified_confidence_lower_bounds_pgd_confidence(digits, name, temperature):
    module = _target(name, digits, temperature=temperature)
    helpers.fit_tiny(module, digits, np.arange(64), epochs=2)
    module.eval()
    x, y = digits.x[64:164], digits.y[64:164]
    pred = Predictor(module, {"s": (x, y)}, batch_size=50)
    v, _ = confidence_and_loss(pred.worst_case_logits("s", 0.05), y)
    b, _ = confidence_and_loss(pred.logits("s"), y)
    x_adv = pgd(module, x, y, 0.05, 20, 0.005)
    a, _ = confidence_and_loss(module(x_adv).detach(), y)
    assert np.all(v <= b + 1e-9) and np.all(v <= a + 1e-9)
    assert np.all(v > 0)


def test_worst_case_logits_apply_temperature(digits):
    m1 = _target("ibp", digits)
    m4 = _target("ibp", digits, temperature=4.0)
    m4.net.load_state_dict(m1.net.state_dict())
    x, y = digits.x[:20], digits.y[:20]
    torch.testing.assert_close(
        m4.worst_case_logits(x, y, 0.05) * 4, m1.worst_case_logits(x, y, 0.05)
    )


def test_iv_end_to_end_on_ibp(tmp_path):
    res = run_experiment(
        "single",
        tiny(tmp_path, "target.name=ibp", "target.warmup_epochs=0", "target.ramp_epochs=1",
             "net.name=mlp", "net.width=0.25", "attacks=[ib,iv]", "attack.bootstrap=20"),
    )  # fmt: skip
    m = res["ibp"].metrics
    for k in ("auc", "acc_best", "acc_calibrated", "auc_ci_low", "auc_ci_high"):
        assert f"attack/iv/{k}" in m
    assert m["attack/iv/auc_ci_low"] <= m["attack/iv/auc"] <= m["attack/iv/auc_ci_high"]
    assert "shadow/train_acc" in m


def test_iv_on_natural_target_is_a_config_error(tmp_path, capsys):
    code = cli.main(["run", "single", *tiny(tmp_path, "attacks=[iv]")])
    assert code == 2
    err = capsys.readouterr().err
    assert "attack iv needs a target with a verifier" in err and "'natural'" in err
    assert all_runs(client_for(tmp_path)) == []


def test_ia_sweep_logs_accuracy_vs_eps(tmp_path):
    res = run_experiment(
        "single",
        tiny(tmp_path, "attacks=[ib,ia_sweep]", "attack.eps_list=[0.0,0.05,0.1]",
             "attack.bootstrap=0"),
    )  # fmt: skip
    client = client_for(tmp_path)
    (run,) = all_runs(client)
    hist = client.get_metric_history(run.info.run_id, "attack/ia_sweep/acc_best")
    assert sorted(h.step for h in hist) == [0, 1, 2]
    eps = client.get_metric_history(run.info.run_id, "attack/ia_sweep/eps")
    assert [h.value for h in sorted(eps, key=lambda h: h.step)] == [0.0, 0.05, 0.1]
    # eps 0 is I_B (same scores, same oracle accuracy)
    at0 = next(h.value for h in hist if h.step == 0)
    assert at0 == pytest.approx(res["natural"].metrics["attack/ib/acc_best"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/ia_sweep.png" in arts and "plots/pr_curve.png" in arts


def test_ia_sweep_rejects_bad_eps(tmp_path, capsys):
    code = cli.main(
        ["run", "single", *tiny(tmp_path, "attacks=[ia_sweep]", "attack.eps_list=[0.1,2]")]
    )
    assert code == 2 and "attack.eps_list" in capsys.readouterr().err


def test_leakage_callback_logs_per_epoch(tmp_path):
    run_experiment(
        "single",
        tiny(tmp_path, "trainer.max_epochs=3", "attack.leakage_every=1", "attack.leakage_n=40",
             "attack.calibrate=false", "attack.bootstrap=0"),
    )  # fmt: skip
    client = client_for(tmp_path)
    (run,) = all_runs(client)
    for key in ("leakage/ib/acc_best", "leakage/ia/auc", "leakage/adv_test_acc"):
        hist = client.get_metric_history(run.info.run_id, key)
        assert sorted(h.step for h in hist) == [0, 1, 2], key
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/leakage.png" in arts


def test_leakage_callback_matches_direct_evaluation_and_restores_mode(digits):
    module = _target("natural", digits)
    cb = LeakageCallback(
        (digits.x[:50], digits.y[:50]), (digits.x[100:150], digits.y[100:150]), 1,
        AttackPGD(0.05, 5).args(),
    )  # fmt: skip
    helpers.fit_tiny(module, digits, np.arange(50), epochs=2, callbacks=[cb])
    assert [h["epoch"] for h in cb.history] == [1.0, 2.0]
    module.train()
    again = cb.evaluate(module)
    assert module.training
    assert again["leakage/ib/acc_best"] == pytest.approx(cb.history[-1]["leakage/ib/acc_best"])
    assert again["leakage/train_acc"] == pytest.approx(cb.history[-1]["leakage/train_acc"])


def test_compare_by_plot_on_parent(tmp_path):
    run_experiment(
        "single",
        tiny(tmp_path, "targets=[natural data.n_members=32,natural data.n_members=64]",
             "compare_by=data.n_members", "attack.calibrate=false", "attacks=[ib]"),
    )  # fmt: skip
    client = client_for(tmp_path)
    runs = all_runs(client)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.data.params["data.n_members"] for r in children) == ["32", "64"]
    sizes = []
    for r in children:  # each target trained on its own split
        local = client.download_artifacts(r.info.run_id, "split/sizes.json", str(tmp_path))
        sizes.append(json.loads(open(local).read())["members"])
    assert sorted(sizes) == [32, 64]
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert "plots/compare_by.png" in arts


@pytest.mark.parametrize("value", ["data.nope", "data.name"])
def test_compare_by_must_be_a_numeric_key(tmp_path, capsys, value):
    code = cli.main(["run", "single", *tiny(tmp_path, f"compare_by={value}")])
    assert code == 2 and "compare_by" in capsys.readouterr().err


def test_parent_run_finishes_with_series_only_attacks(tmp_path):
    """Regression: a parent run whose attacks log no acc_best (ia_sweep) must still finish."""
    res = run_experiment(
        "single",
        tiny(tmp_path, "targets=[natural,natural lr=0.002]", "attacks=[ia_sweep]",
             "attack.eps_list=[0.0,0.1]", "attack.calibrate=false"),
    )  # fmt: skip
    assert len(res) == 2
    runs = all_runs(client_for(tmp_path))
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 3
    from lit_mia.comparison import comparison_table

    table = comparison_table(res, ["ia_sweep"])
    assert "ia_sweep acc" not in table and "| natural |" in table


def test_updates_results_print_as_metric_table():
    from lit_mia.comparison import comparison_table
    from lit_mia.tracking import TargetResult

    res = {"updates": TargetResult("updates", "x", {"attack/a_li/acc": 0.4, "updates/n": 3.0})}
    table = comparison_table(res, ["a_li"])
    assert "| attack/a_li/acc | 0.4000 |" in table and "updates/n" not in table

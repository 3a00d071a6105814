"""Updates-Leak attacks: metric functions on hand-made sets (best-match loss, k-means +
Hungarian MSE, KL), each attack fitting on tiny generated data, the pipeline end to end into a
temporary MLflow store, and bad input on the command line (exit 2)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from pytorch_lightning.loggers.logger import Logger

from lit_mia import cli
from lit_mia.attacks.base import UPDATE_LEAKAGE
from lit_mia.attacks.registry import of_kind
from lit_mia.attacks.update_leakage import match_metrics as ev
from lit_mia.attacks.update_leakage.decoders import LabelInference
from lit_mia.attacks.update_leakage.settings import UpdatesSettings
from lit_mia.fitting import fit_module

UPDATE_ATTACKS = of_kind(UPDATE_LEAKAGE)


# ---------------------------------------------------------------- pure metrics
def test_best_match_loss_hand_made():
    real = torch.tensor([[[0.0, 0.0], [10.0, 10.0]]])  # [1, k=2, D=2]
    gen = torch.tensor([[[1.0, 0.0], [10.0, 12.0], [100.0, 100.0]]])  # [1, G=3, 2]
    # nearest generated: (1,0) at squared distance 1, (10,12) at 4 -> mean 2.5
    assert ev.best_match_loss(gen, real).item() == pytest.approx(2.5)
    two = torch.cat([gen, gen + torch.tensor([0.0, 1.0])])  # second set: distances 2 and 9
    assert ev.best_match_loss(two, torch.cat([real, real])).item() == pytest.approx(4.0)


def test_kmeans_hungarian_zero_when_generated_equals_real():
    rng = np.random.default_rng(0)
    real = rng.random((5, 16))
    assert ev.msr_mse(real.copy(), real) == pytest.approx(0.0, abs=1e-12)
    assert ev.msr_mse(np.repeat(real, 4, axis=0), real) == pytest.approx(0.0, abs=1e-12)
    assert ev.msr_mse(real[::-1].copy(), real) == pytest.approx(0.0, abs=1e-12)
    assert ev.msr_mse(real[:1].copy(), real[:1]) == 0.0  # k = 1
    assert ev.msr_mse(rng.random((20, 16)), real) > 0.01


def test_hungarian_matches_brute_force():
    rng = np.random.default_rng(1)
    for _ in range(5):
        a, b = rng.random((4, 9)), rng.random((4, 9))
        cost = ev.pairwise_mse(a, b)
        np.testing.assert_allclose(cost, ((a[:, None] - b[None]) ** 2).mean(-1), atol=1e-12)
        brute = min(np.mean([cost[i, p] for i, p in enumerate(perm)]) for perm in
                    itertools.permutations(range(4)))  # fmt: skip
        assert ev.hungarian_mse(a, b) == pytest.approx(brute)


def test_histograms_kl_and_argmax():
    h = ev.histograms(np.array([[0, 0, 1, 2], [2, 2, 2, 2]]), 3)
    np.testing.assert_allclose(h, [[0.5, 0.25, 0.25], [0, 0, 1]])
    assert ev.kl_divergence(h, h) == pytest.approx([0, 0])
    uni = np.full((2, 3), 1 / 3)
    expect = [0.5 * np.log(1.5) + 0.5 * np.log(0.75), np.log(3)]
    np.testing.assert_allclose(ev.kl_divergence(h, uni), expect)
    assert ev.argmax_accuracy(h, h) == 1.0
    assert ev.argmax_accuracy(h, np.array([[0.1, 0.8, 0.1], [0, 0, 1]])) == 0.5
    r = ev.random_histograms(7, 3, np.random.default_rng(0))
    assert r.shape == (7, 3) and np.allclose(r.sum(1), 1)


def test_label_random_draws():
    pool_labels = np.array([0, 1, 1, 2, 2, 2])
    labels = np.array([1, 2, 0, 1])
    pos = ev.label_random_draws(labels, pool_labels, np.random.default_rng(0), True)
    assert (pool_labels[pos] == labels).all()
    pos = ev.label_random_draws(labels, pool_labels, np.random.default_rng(0), False)
    assert pos.min() >= 0 and pos.max() < 6


# ---------------------------------------------------------------- modules on tiny data
class MemoryLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[dict] = []

    name = "memory"
    version = "0"

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.metrics.append(dict(metrics))


def test_label_inference_learns_separable_deltas():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (256,), generator=g)
    delta = torch.randn(256, 20, generator=g) * 0.1 + torch.nn.functional.one_hot(y, 20)
    log = MemoryLogger()
    module = LabelInference(20, 4, [16, 8], 0.0, 1e-2)
    fit_module(module, (delta, y), epochs=15, batch_size=32, logger=log)
    with torch.no_grad():
        acc = (module(delta).argmax(-1) == y).float().mean().item()
    assert acc > 0.9
    assert "train/loss" in log.metrics[-1] and "train/acc" in log.metrics[-1]


def test_keep_best_restores_the_epoch_with_the_lowest_held_out_loss():
    """fit_module with `val`: the returned weights are those of the logged epoch with the
    lowest val/loss (recomputed on the returned module), not the last epoch's."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (200,), generator=g)
    delta = torch.randn(200, 20, generator=g) + torch.nn.functional.one_hot(y, 20) * 0.7
    yv = torch.randint(0, 4, (100,), generator=g)
    dv = torch.randn(100, 20, generator=g) + torch.nn.functional.one_hot(yv, 20) * 0.7
    log = MemoryLogger()
    module = LabelInference(20, 4, [64, 64], 0.0, 1e-2)  # overfits: val loss turns up
    fit_module(module, (delta, y), epochs=25, batch_size=32, logger=log, val=(dv, yv))
    val = [r["val/loss"] for r in log.metrics if "val/loss" in r]
    assert len(val) == 25 and module.best_epoch == int(np.argmin(val)) < 24
    assert module.best_val == pytest.approx(min(val), rel=1e-6)
    with torch.no_grad():
        again = torch.nn.functional.cross_entropy(module(dv), yv).item()
    assert again == pytest.approx(min(val), rel=1e-5)


def test_holdout_is_a_base_the_decoder_never_sees():
    from lit_mia.attacks.update_leakage.context import holdout

    base_of = torch.arange(12) % 3
    tr, va = holdout(base_of, 0.2, 0)
    assert (base_of[va] == 2).all() and (base_of[tr] != 2).all() and len(va) == 4
    one = torch.zeros(10, dtype=torch.long)  # one shadow base: a seeded random fifth
    tr1, va1 = holdout(one, 0.2, 0)
    assert len(va1) == 2 and sorted(tr1.tolist() + va1.tolist()) == list(range(10))
    assert torch.equal(va1, holdout(one, 0.2, 0)[1])
    assert not torch.equal(va1, holdout(one, 0.2, 1)[1])


def test_registry_entries():
    from lit_mia.attacks.registry import ATTACKS, settings_sections

    assert list(UPDATE_ATTACKS) == ["a_li", "a_ssr", "a_lde", "a_msr"]
    assert of_kind(UPDATE_LEAKAGE) == UPDATE_ATTACKS
    assert settings_sections()["updates"] is UpdatesSettings
    for name, a in UPDATE_ATTACKS.items():
        assert ATTACKS[name] is a and a.name == name and a.kind == UPDATE_LEAKAGE
        assert a.description and a.settings == {"updates": UpdatesSettings}
        assert a.shadows(None) == 0


def test_registry_check_names_the_attack():
    from omegaconf import OmegaConf

    from lit_mia.errors import ConfigError

    cfg = OmegaConf.create(
        {"updates": UpdatesSettings(k=3), "data": {"name": "mnist5k"}, "net": {"name": "lenet"}}
    )
    for name in ("a_lde", "a_msr"):
        UPDATE_ATTACKS[name].check(cfg)
    for name in ("a_li", "a_ssr"):
        with pytest.raises(ConfigError, match=f"single-sample attack {name}"):
            UPDATE_ATTACKS[name].check(cfg)


# ---------------------------------------------------------------- end to end
E2E = [
    "updates.n_shadow_bases=2",
    "updates.m_shadow=32",
    "updates.m_target=8",
    "updates.base_size=64",
    "updates.base_epochs=1",
    "updates.shadow_pool=100",
    "updates.target_pool=100",
    "updates.n_probe=10",
    "updates.batch_size=16",
    "updates.li.epochs=1",
    "updates.ssr.epochs=1",
    "updates.ssr.ae_epochs=1",
    "updates.ssr.n_grid=2",
    "net.width=0.5",
]


def _client(tmp_path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")


def test_single_experiment_end_to_end(tmp_path):
    from lit_mia.run import run_experiment

    args = [
        *E2E,
        f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
        f"updates.cache_dir={tmp_path}/cache",
    ]
    res = run_experiment("updates_leak_single", args)["updates"]
    client = _client(tmp_path)
    run = client.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    for key in (
        "attack/a_li/acc",
        "attack/a_li/acc_random",
        "attack/a_li/acc_majority",
        "attack/a_ssr/mse",
        "attack/a_ssr/mse_label_random",
        "attack/a_ssr/mse_random",
        "attack/a_ssr/mse_ae_oracle",
        "attack/a_ssr/mse_class_mean",
        "attack/a_li/acc_norm_only",
        "updates/k1/target_base_acc",
        "updates/k1/overlap",
    ):
        assert key in run.data.metrics, key
    assert run.data.metrics["updates/k1/cache_hit"] == 0.0
    assert run.data.metrics["updates/k1/shadow_max_use"] == 1.0  # distinct update images
    assert run.data.params["updates.k"] == "1"
    arts = {a.path for a in client.list_artifacts(res.run_id)}
    assert {"config.yaml", "plots", "updates", "pools"} <= arts
    plots = {a.path for a in client.list_artifacts(res.run_id, "plots")}
    assert "plots/a_ssr_reconstructions.png" in plots
    history = client.get_metric_history(res.run_id, "updates/a_li/train/loss")
    assert len(history) == 1  # one epoch, stepped by epoch
    again = run_experiment("updates_leak_single", args)["updates"]
    assert client.get_run(again.run_id).data.metrics["updates/k1/cache_hit"] == 1.0
    assert again.metrics["attack/a_li/acc"] == res.metrics["attack/a_li/acc"]


@pytest.mark.slow
def test_multi_experiment_end_to_end(tmp_path):
    from lit_mia.run import run_experiment

    args = [
        *E2E,
        "updates.k=4",
        "updates.lde.k=6",
        "updates.lde.epochs=1",
        "updates.msr.epochs=1",
        "updates.msr.gen_hidden=[32]",
        "updates.msr.disc_hidden=[16]",
        "updates.msr.n_eval_gen=8",
        "updates.msr.sets_per_batch=8",
        f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
        f"updates.cache_dir={tmp_path}/cache",
    ]
    res = run_experiment("updates_leak_multi", args)["updates"]
    metrics = _client(tmp_path).get_run(res.run_id).data.metrics
    for key in ("attack/a_lde/kl", "attack/a_lde/kl_random", "attack/a_msr/mse"):
        assert key in metrics
    assert "attack/a_msr/mse_random" in metrics


# ---------------------------------------------------------------- bad input: exit 2
BAD = [
    (
        "probe-overlaps-pools",
        ["run", "updates_leak_single", "updates.n_probe=3000"],
        ["updates.n_probe", "probe set would overlap the update pools", "<= 5000"],
    ),
    (
        "k-larger-than-pool",
        ["run", "updates_leak_multi", "updates.k=2000"],
        ["updates.k must be <= the update pool size", "= 500", "got 2000"],
    ),
    (
        "lde-set-larger-than-pool",
        ["run", "updates_leak_multi", "updates.lde.k=501"],
        ["updates.lde.k must be <= the update pool size", "= 500", "got 501"],
    ),
    ("k-zero", ["run", "updates_leak_multi", "updates.k=0"], ["updates.k must be >= 1, got 0"]),
    (
        "lde-k-negative",
        ["run", "updates_leak_multi", "updates.lde.k=-3"],
        ["updates.lde.k must be >= 1, got -3"],
    ),
    (
        "m-shadow-zero",
        ["run", "updates_leak_single", "updates.m_shadow=0"],
        ["updates.m_shadow must be >= 1, got 0"],
    ),
    (
        "m-target-zero",
        ["run", "updates_leak_multi", "updates.m_target=0"],
        ["updates.m_target must be >= 1, got 0"],
    ),
    (
        "shadow-bases-zero",
        ["run", "updates_leak_single", "updates.n_shadow_bases=0"],
        ["updates.n_shadow_bases must be >= 1, got 0"],
    ),
    (
        "unknown-representation",
        ["run", "updates_leak_single", "updates.representation=logits"],
        ["updates.representation must be one of log_unit, unit, standardized", "'logits'"],
    ),
    (
        "farm-dtype",
        ["run", "updates_leak_multi", "updates.farm_dtype=float16"],
        ["updates.farm_dtype must be one of float64, float32", "'float16'"],
    ),
    (
        "ablation-probes",
        ["run", "updates_leak_ablation", "updates.ablation.n_probes=[10,200]"],
        ["updates.ablation.n_probes must be <= updates.n_probe (100)", "[10, 200]"],
    ),
    (
        "m-shadow-below-batch",
        ["run", "updates_leak_single", "updates.m_shadow=10"],
        ["updates.m_shadow must be >= updates.batch_size (64)", "got 10"],
    ),
    (
        "no-autoencoder-for-dataset",
        [
            "run",
            "updates_leak_single",
            "data.name=digits",
            "net.name=mlp",
            "updates.base_size=300",
            "updates.shadow_pool=400",
            "updates.target_pool=400",
        ],
        [
            "data.name",
            "a_ssr has no autoencoder",
            "'digits'",
            "valid: fashion_mnist, mnist, mnist5k",
        ],
    ),  # fmt: skip
    (
        "single-sample-attack-with-k",
        ["run", "updates_leak_single", "updates.k=3"],
        ["updates.k must be 1 for the single-sample attack a_li"],
    ),
    (
        "batchnorm-net",
        ["run", "updates_leak_multi", "net.name=wide_resnet"],
        ["net.name must be a net without BatchNorm", "wide_resnet"],
    ),
    (
        "probe-mode",
        ["run", "updates_leak_multi", "updates.probe_mode=fast"],
        ["updates.probe_mode must be one of loop, vmap, delta", "'fast'"],
    ),
    (
        "ssr-decoder",
        ["run", "updates_leak_single", "updates.ssr.decoder=cnn"],
        ["updates.ssr.decoder must be one of mlp, autoencoder", "'cnn'"],
    ),
    (
        "val-fraction",
        ["run", "updates_leak_single", "updates.val_fraction=1.5"],
        ["updates.val_fraction must be in (0, 1), got 1.5"],
    ),
    (
        "optimizer",
        ["run", "updates_leak_multi", "updates.update_optimizer=rmsprop"],
        ["updates.update_optimizer must be one of sgd, adam"],
    ),
    (
        "mixed-families",
        ["run", "updates_leak_single", "attacks=[a_li,ib]"],
        ["mixes update-leakage attacks"],
    ),
]


@pytest.mark.parametrize(("argv", "needles"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_input_exits_2(tmp_path, capsys, argv, needles):
    code = cli.main([*argv, f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1
    for needle in needles:
        assert needle in err
    assert not (tmp_path / "mlruns").exists()  # refused before any MLflow run

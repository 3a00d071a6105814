"""Plug-ins by entry point (lit_mia/plugins.py) and the example plug-in package.

examples/lit_mia_example is installed in the test venv (`make setup`: pip install -e), so its
net `tiny_mlp` and dataset `blobs` are real entries of the registries: listed, resolved by the
config, trained and attacked by `lit-mia run`. Clashes and broken plug-ins are real
`importlib.metadata.EntryPoint`s (and, for the CLI, a real distribution on PYTHONPATH)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from lit_mia import cli, config
from lit_mia.attacks.registry import ATTACKS
from lit_mia.data.datasets import DATASETS, load_dataset
from lit_mia.errors import ConfigError
from lit_mia.nets import NETS, build_net
from lit_mia.targets import TARGETS
from lit_mia.tracking import client_for, resolve_uri

pytest.importorskip("lit_mia_example", reason="make setup installs examples/lit_mia_example")


def all_runs(uri: str) -> list:
    """Every run in the MLflow store at `uri` (any experiment)."""
    client = client_for(resolve_uri(uri)[0])
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def ep(name: str, value: str, group: str = "lit_mia.nets") -> EntryPoint:
    return EntryPoint(name=name, value=value, group=group)


def test_example_plugin_is_registered_and_listed(capsys):
    assert "tiny_mlp" in NETS and "blobs" in DATASETS
    assert "tiny_mlp" in config.group_names("net") and "blobs" in config.group_names("data")
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "tiny_mlp" in out.split("net:")[1].splitlines()[0]
    assert "plug-in net tiny_mlp: tiny_mlp = lit_mia_example.nets:tiny_mlp" in out
    assert "plug-in dataset blobs" in out


def test_plugin_net_gets_builtin_validation():
    b = load_dataset("blobs")
    net = build_net("tiny_mlp", b.shape, b.n_classes, b.mean, b.std, width=0.5, depth=2)
    assert type(net[0]).__name__ == "Normalize"  # build_net's norm is the first layer
    assert net(b.x[:3]).shape == (3, 4)
    with pytest.raises(ConfigError, match="net.width must be > 0"):
        build_net("tiny_mlp", b.shape, b.n_classes, b.mean, b.std, width=0)
    with pytest.raises(ConfigError, match="net.dropout"):
        config.load("single", ["net.name=tiny_mlp", "data.name=blobs", "net.dropout=1"])


def test_config_and_run_with_plugin_net_and_dataset(tmp_path, capsys):
    over = [
        "net.name=tiny_mlp",
        "net.width=0.5",
        "data.name=blobs",
        "data.n_members=200",
        "data.n_nonmembers=200",
        "data.n_validation=0",
        "data.n_shadow=0",
        "attack.calibrate=false",
        "attack.steps=2",
        "trainer.val_adv_steps=0",
        "data.batch_size=32",
        "trainer.max_epochs=5",
        "trainer.enable_progress_bar=false",
        "attacks=[ib]",
        "attack.bootstrap=20",
        f"tracking.uri={tmp_path}/mlruns",
        "tracking.log_checkpoint=false",
    ]
    assert cli.main(["config", "single", *over]) == 0
    out = capsys.readouterr().out
    assert "name: tiny_mlp" in out and "name: blobs" in out
    assert cli.main(["run", "single", *over]) == 0
    (run,) = all_runs(f"{tmp_path}/mlruns")
    assert run.info.status == "FINISHED"
    assert run.data.params["net.name"] == "tiny_mlp" and run.data.params["data.name"] == "blobs"
    m = run.data.metrics
    assert m["target/train_acc"] > 0.5 and "attack/ib/auc" in m


UPDATES_ON_BLOBS = [
    "attacks=[a_li]",
    "net.name=tiny_mlp",
    "data.name=blobs",
    "updates.base_size=100",
    "updates.shadow_pool=300",
    "updates.target_pool=300",
    "updates.m_shadow=16",
    "updates.m_target=8",
    "updates.batch_size=8",
]


def test_update_leakage_pools_sized_by_the_plugin_dataset():
    """Update leakage reads a plug-in data set's size from the data registry (1,200 blobs): a
    layout that fits cuts disjoint pools out of exactly those indices; one sample too many is a
    ConfigError naming the key and the bound, before any MLflow run."""
    from lit_mia.run_updates import prepare

    cfg = config.load("updates_leak_single", [*UPDATES_ON_BLOBS, "updates.n_probe=400"])
    bundle, pools = prepare(cfg)
    blocks = [v for v in pools.to_dict().values()]
    idx = sorted(int(i) for b in blocks for i in b)
    assert len(bundle) == 1200 and len(idx) == len(set(idx)) == 1200  # every sample, once
    assert max(idx) == 1199
    cfg = config.load("updates_leak_single", [*UPDATES_ON_BLOBS, "updates.n_probe=401"])
    with pytest.raises(ConfigError, match=r"updates\.n_probe.*= 1201 must be <= 1200"):
        prepare(cfg)


SHADOW_ENTRY = ATTACKS["shadow"]  # a real Attack, for entry points in this module
REGISTRIES = {"nets": NETS, "targets": TARGETS, "attacks": ATTACKS}


def test_clash_with_builtin_names_both_sources():
    with pytest.raises(ConfigError) as e:
        NETS.replace(eps=[ep("mlp", "lit_mia_example.nets:tiny_mlp")]).load_all()
    msg = str(e.value)
    assert "'mlp'" in msg and "lit_mia_example.nets:tiny_mlp" in msg
    assert "the built-in net 'mlp' (lit_mia.nets)" in msg and "\n" not in msg


def test_clash_between_plugins_names_both_sources():
    two = [ep("dup", "lit_mia_example.nets:tiny_mlp"), ep("dup", "lit_mia.nets:mlp")]
    with pytest.raises(ConfigError) as e:
        NETS.replace(builtins={}, eps=two).load_all()
    msg = str(e.value)
    assert "dup = lit_mia.nets:mlp" in msg and "plug-in dup = lit_mia_example.nets:tiny_mlp" in msg


@pytest.mark.parametrize(
    "registry, entry, words",
    [
        ("nets", ep("gone", "lit_mia_no_such_module:f"), ["gone", "ModuleNotFoundError"]),
        ("nets", ep("doc", "lit_mia_example:__doc__"), ["doc", "must be callable"]),
        (
            "targets",
            ep("regime", "lit_mia.nets:mlp", "lit_mia.targets"),
            ["regime", "TargetModule subclass"],
        ),
        (
            "attacks",
            ep("other_name", "tests.test_plugins:SHADOW_ENTRY", "lit_mia.attacks"),
            ["other_name", "must be an Attack", "named 'other_name'"],
        ),
    ],
)
def test_bad_plugins_are_one_line_errors(registry, entry, words):
    with pytest.raises(ConfigError) as e:
        REGISTRIES[registry].replace(builtins={}, eps=[entry]).load_all()
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_valid_attack_plugin_merges():
    group = "lit_mia.attacks"
    reg = ATTACKS.replace(builtins={}, eps=[ep("shadow", "tests.test_plugins:SHADOW_ENTRY", group)])
    assert "shadow" in reg and reg.is_plugin("shadow")
    assert reg["shadow"] is SHADOW_ENTRY
    assert reg.source("shadow") == "the plug-in shadow = tests.test_plugins:SHADOW_ENTRY"


def test_plugin_names_are_read_without_importing_the_plugin():
    """Names and sources come from the metadata; the module loads on first use, and its
    failure is then the one-line error."""
    reg = NETS.replace(builtins={}, eps=[ep("gone", "lit_mia_no_such_module:f")])
    assert list(reg) == ["gone"] and "gone" in reg and len(reg) == 1
    assert reg.source("gone") == "the plug-in gone = lit_mia_no_such_module:f"
    with pytest.raises(ConfigError, match="gone = lit_mia_no_such_module:f.*ModuleNotFound"):
        reg["gone"]


def test_cli_with_a_plugin_that_fails_to_import(tmp_path):
    """A real distribution whose entry point raises on import: `lit-mia list` lists it from its
    metadata without importing it (exit 0); selecting it exits 2 with one line naming the entry
    point and the error, from the config check (no MLflow run can exist: nothing started)."""
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lit_mia.nets]\nbroken = broken_plugin_mod:net\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise RuntimeError('boom at import')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def cli_run(*args):
        cmd = [sys.executable, "-m", "lit_mia.cli", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)

    p = cli_run("list")
    assert p.returncode == 0, p.stderr
    assert "plug-in net broken: broken = broken_plugin_mod:net (broken-plugin 0.1)" in p.stdout
    p = cli_run("config", "single", "net.name=broken")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "broken = broken_plugin_mod:net (broken-plugin 0.1)" in lines[0]
    assert "RuntimeError: boom at import" in lines[0]

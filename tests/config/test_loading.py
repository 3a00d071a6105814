"""Config loading: every YAML under conf/ and sweeps/, required keys, registries, precedence."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf

from lit_mia import config, sweep
from lit_mia.attacks.registry import ATTACKS as ALL_ATTACKS
from lit_mia.data.datasets import DATASETS
from lit_mia.errors import ConfigError
from lit_mia.nets import NETS
from lit_mia.targets import TARGETS

MISSING = object()
GROUP_FILES = [(g, n) for g in config.GROUPS for n in config.group_names(g)]
EXPERIMENTS = config.group_names("experiment")
SWEEPS = sorted(p.stem for p in config.SWEEPS_DIR.glob("*.yaml"))
REQUIRED = [
    "seed",
    "tracking.uri",
    "tracking.experiment",
    "trainer.max_epochs",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.strategy",
    "data.name",
    "data.n_members",
    "data.n_nonmembers",
    "net.name",
    "net.width",
    "target.name",
    "target.eps",
    "attack.eps",
    "attacks",
]


def has(cfg, key: str) -> bool:
    return OmegaConf.select(cfg, key, default=MISSING) is not MISSING


# attacks that only apply to some targets: loaded with a target they accept
NEEDS = {("attack", "iv"): ["target.name=ibp"]}


def assert_contains(resolved, raw, where: str) -> None:
    """Every key the YAML sets has its value in the resolved config (nested sections too)."""
    if isinstance(raw, DictConfig):
        for k, v in raw.items():
            assert_contains(resolved[k], v, f"{where}.{k}")
    else:
        assert resolved == raw, where


def test_conf_is_not_empty() -> None:
    assert len(GROUP_FILES) >= 15
    assert {"default", "single"} <= set(EXPERIMENTS)
    assert {"eps", "capacity"} <= set(SWEEPS)


# ---------------------------------------------------------------- every YAML loads
def group_defaults(group: str, name: str) -> DictConfig:
    """A registry group's defaults without a YAML: the settings classes (config.schema)."""
    section = OmegaConf.structured(config.schema(name if group == "target" else "natural"))[group]
    return OmegaConf.merge(section, {"name": name})


@pytest.mark.parametrize(("group", "name"), GROUP_FILES, ids=[f"{g}-{n}" for g, n in GROUP_FILES])
def test_group_yaml_loads(group: str, name: str) -> None:
    cfg = config.load("single", [f"{group}.name={name}", *NEEDS.get((group, name), [])])
    assert cfg[group].name == name
    path = config.CONF_DIR / group / f"{name}.yaml"
    if path.is_file():
        raw = OmegaConf.load(path)
        assert raw.name == name, "a group YAML's name must match its file name"
    else:  # registry names without a YAML (targets, attacks, file datasets, plug-ins):
        # their defaults are the settings classes'
        assert group in ("target", "attack", "net", "data"), f"{path} is missing"
        raw = group_defaults(group, name)
    exp_section = OmegaConf.load(config.CONF_DIR / "experiment" / "single.yaml").get(group, {})
    for key, value in raw.items():
        if key != "name" and key in exp_section:
            continue  # the experiment file overrides the group YAML / defaults
        assert_contains(cfg[group][key], value, f"{group}.{key}")
    for key in REQUIRED:
        assert has(cfg, key), key


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_yaml_loads(name: str) -> None:
    cfg = config.load(name)
    assert cfg.name == name
    for key in REQUIRED:
        assert has(cfg, key), key
    for c in config.per_target(name):
        assert c.name == name
        for key in REQUIRED:
            assert has(c, key), key


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_yaml_loads(name: str) -> None:
    raw = OmegaConf.load(config.SWEEPS_DIR / f"{name}.yaml")
    assert has(raw, "sweep.n_trials")
    assert has(raw, "sweep.storage")
    spec, overrides = sweep.load_spec(name)
    assert spec.sweep.n_trials == raw.sweep.n_trials >= 0
    assert spec.sweep.storage == raw.sweep.storage
    assert spec.sweep.study_name == name
    assert spec.params
    assert spec.objectives
    base = config.load(spec.experiment, overrides)
    for key in REQUIRED:
        assert has(base, key), key
    assert len(config.target_names(base)) == 1
    sweep._check_objectives(spec, base)
    for key in (*spec.params, *spec.tie):
        assert has(base, key), key


def test_sweep_overrides_split_between_sweep_and_experiment() -> None:
    spec, overrides = sweep.load_spec("eps", ["sweep.n_trials=2", "trainer.max_epochs=1"])
    assert spec.sweep.n_trials == 2
    assert overrides[-1] == "trainer.max_epochs=1"
    assert "sweep.n_trials=2" not in overrides
    assert config.load(spec.experiment, overrides).trainer.max_epochs == 1


def test_sweep_given_as_path() -> None:
    spec, _ = sweep.load_spec(str(config.SWEEPS_DIR / "capacity.yaml"))
    assert "net.width" in spec.params
    assert spec.sweep.study_name == "capacity"


# ---------------------------------------------------------------- registries
@pytest.mark.parametrize(
    ("group", "registry"),
    [("target", TARGETS), ("attack", ALL_ATTACKS), ("net", NETS), ("data", DATASETS)],
)
def test_group_names_match_registry(group: str, registry) -> None:
    assert config.group_names(group) == sorted(registry)


def test_trainer_group() -> None:
    assert {"cpu", "gpu", "ddp"} <= set(config.group_names("trainer"))


def test_schema_has_required_keys() -> None:
    keys = set(config.schema_keys())
    assert set(REQUIRED) <= keys
    assert {"name", "description", "targets"} <= keys


# ---------------------------------------------------------------- per_target
def test_per_target_default_is_natural_and_pgd() -> None:
    natural, pgd = config.per_target("default")
    assert (natural.target.name, pgd.target.name) == ("natural", "pgd")
    assert (natural.target.eps, natural.target.steps) == (0.0, 0)
    assert (pgd.target.eps, pgd.target.steps, pgd.target.step_size) == (0.1, 8, 0.02)
    assert list(natural.targets) == list(pgd.targets) == ["natural", "pgd"]
    for c in (natural, pgd):
        assert c.data.name == "mnist5k"
        assert c.net.name == "lenet_mnist"
        assert list(c.attacks) == ["ib", "ia"]
        assert c.tracking.experiment == "default"
    assert config.flatten(natural.data) == config.flatten(pgd.data)


def test_per_target_single_target() -> None:
    (cfg,) = config.per_target("single")
    assert cfg.target.name == "natural"
    (cfg,) = config.per_target("default", ["targets=[pgd]"])
    assert cfg.target.name == "pgd"
    assert cfg.target.eps == 0.1


def test_per_target_cli_applies_to_every_target() -> None:
    cfgs = config.per_target("default", ["target.lr=0.01", "data.n_members=10"])
    assert [c.target.lr for c in cfgs] == [0.01, 0.01]
    assert [c.data.n_members for c in cfgs] == [10, 10]


# ---------------------------------------------------------------- precedence
def test_schema_then_group_yaml_then_experiment_then_cli() -> None:
    schema = OmegaConf.structured(config.ExperimentConfig)
    assert schema.net.width == 1.0
    assert schema.target.eps == 0.0
    cfg = config.load("single")
    assert cfg.net.name == "lenet_mnist"
    assert cfg.net.width == 2.0  # experiment beats conf/net/lenet_mnist.yaml (1.0)
    assert config.load("single", ["net=fmnist_cnn"]).net.width == 2.0  # experiment's width
    assert cfg.data.n_members == 1000  # conf/data/mnist5k.yaml
    assert config.load("single", ["net.width=0.5"]).net.width == 0.5  # CLI beats experiment
    # experiment-chosen group name still gets CLI values on top
    assert config.load("default", ["trainer.max_epochs=3"]).trainer.max_epochs == 3


def test_group_shorthand_equals_name_key() -> None:
    a = config.load("single", ["target=pgd"])
    b = config.load("single", ["target.name=pgd"])
    assert OmegaConf.to_container(a) == OmegaConf.to_container(b)
    assert config.load("single", ["data=digits"]).data.n_members == 400


def test_cli_target_name_loads_its_yaml() -> None:
    cfg = config.load("single", ["target.name=pgd"])
    assert (cfg.target.eps, cfg.target.steps, cfg.target.step_size) == (0.1, 8, 0.02)
    assert cfg.target.random_start is True
    for order in (["target.eps=0.2", "target.name=pgd"], ["target.name=pgd", "target.eps=0.2"]):
        cfg = config.load("single", order)
        assert (cfg.target.eps, cfg.target.steps) == (0.2, 8)


def test_attack_shorthand_sets_attacks() -> None:
    cfg = config.load("single", ["attack=ia"])
    assert cfg.attack.name == "ia"
    assert list(cfg.attacks) == ["ia"]
    assert cfg.attack.steps == 20
    assert cfg.attack.step_size is None
    cfg = config.load("single", ["attack=ia", "attacks=[ib,ia]"])
    assert list(cfg.attacks) == ["ib", "ia"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("[ib,ia]", ["ib", "ia"]), ("[ia]", ["ia"]), ("[ia, ib]", ["ia", "ib"])],
)
def test_attacks_list_parsing(value: str, expected: list[str]) -> None:
    assert list(config.load("single", [f"attacks={value}"]).attacks) == expected


def test_experiment_file_path(tmp_path) -> None:
    exp = tmp_path / "mine.yaml"
    exp.write_text(
        "targets: [pgd]\n"
        "attacks: [ia]\n"
        "data: {name: digits, n_members: 100}\n"
        "net: {name: mlp, width: 0.5}\n"
        "target: {name: pgd, steps: 3}\n"
    )
    cfg = config.load(str(exp))
    assert cfg.name == "mine"
    assert (cfg.data.name, cfg.data.n_members, cfg.data.n_shadow) == ("digits", 100, 800)
    assert (cfg.net.name, cfg.net.width) == ("mlp", 0.5)
    assert (cfg.target.eps, cfg.target.steps) == (0.1, 3)  # pgd defaults < experiment
    assert config.load(str(exp), ["target.steps=5"]).target.steps == 5  # < CLI
    assert config.load(str(exp), ["target=natural"]).target.eps == 0.0  # CLI picks the regime
    same = config.load(str(config.CONF_DIR / "experiment" / "single.yaml"))
    assert OmegaConf.to_container(same) == OmegaConf.to_container(config.load("single"))


def test_parse_overrides() -> None:
    assert config.parse_overrides(["target=pgd", "tracking.uri=a=b", " seed=1"]) == [
        ("target.name", "pgd"),
        ("tracking.uri", "a=b"),
        ("seed", "1"),
    ]


def test_flatten_gives_dotted_string_params() -> None:
    cfg = config.load("single", ["target=pgd"])
    flat = config.flatten(cfg)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in flat.items())
    assert sorted(flat) == config.schema_keys("pgd")
    assert flat["target.eps"] == "0.1"
    assert flat["target.steps"] == "8"
    assert flat["net.depth"] == "None"
    assert flat["attacks"] == "['ib', 'ia']"
    assert flat["tracking.experiment"] == "single"


def test_yaml_round_trip() -> None:
    cfg = config.load("default")
    again = OmegaConf.create(config.to_yaml(cfg))
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.devices=2"],
        ["trainer.devices=auto"],
        ["trainer=gpu", "trainer.devices=-1"],
        ["trainer=gpu", "trainer.devices=[0,1]"],
        ["trainer=gpu", "trainer.devices=0,1"],
        ["trainer=ddp"],
        ["trainer=ddp", "trainer.accelerator=cpu", "trainer.strategy=ddp_spawn"],
        ["trainer.precision=bf16-mixed"],
        ["target=pgd", "target.eps=0"],
        ["target.eps=1", "attack.eps=0"],
    ],
    ids=lambda ov: " ".join(ov),
)
def test_valid_edge_values_accepted(overrides: list[str]) -> None:
    config.load("single", overrides)


def test_targets_entries_with_keys(tmp_path) -> None:
    exp = tmp_path / "mixed.yaml"
    exp.write_text("targets: ['pgd ratio=0.5', 'pgd ratio=0.75 eps=0.2', natural]\n")
    cfgs = config.per_target(str(exp))
    assert [c.label for c in cfgs] == ["pgd ratio=0.5", "pgd ratio=0.75 eps=0.2", "natural"]
    assert [c.target.get("ratio") for c in cfgs] == [0.5, 0.75, None]  # natural has no ratio
    assert cfgs[1].target.eps == 0.2
    assert cfgs[0].target.eps == 0.1
    cli = config.per_target(str(exp), ["target.eps=0.15"])
    assert [c.target.eps for c in cli] == [0.15, 0.2, 0.15]  # the entry's keys win
    with pytest.raises(ConfigError, match=r"unknown key 'target\.ratio'"):
        config.per_target(str(exp), ["target.ratio=1.0"])  # a pgd-only key reaches natural
    pgd_only = tmp_path / "pgd_only.yaml"
    pgd_only.write_text("targets: ['pgd ratio=0.5', pgd]\n")
    cfgs = config.per_target(str(pgd_only), ["target.ratio=0.9"])
    assert [c.target.ratio for c in cfgs] == [0.5, 0.9]  # the entry's keys win over the CLI
    assert config.target_names(config.load(str(exp))) == ["pgd", "pgd", "natural"]


@pytest.mark.parametrize(
    ("entry", "key"), [("'pgd ratio'", "ratio"), ("'nosuch'", "nosuch"), ("'pgd foo=1'", "foo")]
)
def test_bad_targets_entry(tmp_path, entry, key) -> None:
    exp = tmp_path / "bad.yaml"
    exp.write_text(f"targets: [{entry}]\n")
    with pytest.raises(ConfigError, match=key):
        config.per_target(str(exp))


def test_lazy_tables_resolve_to_the_code():
    """The torch-free tables (lit_mia/registry.py, targets/__init__.py, attacks/registry.py,
    config.STRATEGIES) name code that exists and agree with it: every built-in reference
    imports, each regime's settings class is its LightningModule's `Settings`, and every
    strategy the config accepts without asking Lightning is one of Lightning's."""
    from functools import partial

    from pytorch_lightning.strategies import StrategyRegistry

    from lit_mia import targets
    from lit_mia.registry import DATASETS as REG_DATASETS
    from lit_mia.registry import NETS as REG_NETS
    from lit_mia.registry import LazyCallable

    assert set(config.STRATEGIES) - {"auto"} <= set(StrategyRegistry.available_strategies())
    for name, cls in targets.SETTINGS.items():
        assert TARGETS[name].Settings is cls, name
        assert targets.settings_class(name) is cls
    for reg in (REG_NETS, REG_DATASETS, TARGETS, ALL_ATTACKS):
        objs = reg.load_all()
        assert objs
        assert all(callable(o) or hasattr(o, "run") for o in objs.values())
    for a in ALL_ATTACKS.values():
        for fn in (a.run, a.check, a.shadows, a.scorer):
            fn = fn.func if isinstance(fn, partial) else fn
            if isinstance(fn, LazyCallable):
                assert callable(fn.load()), (a.name, fn.value)
                assert fn.__module__ == fn.value.partition(":")[0]
        assert ALL_ATTACKS.source(a.name).startswith(f"the built-in attack {a.name!r} (lit_mia.")


def test_unloaded_lazy_reference_fails_clearly():
    from lit_mia.registry import LazyCallable, Ref

    with pytest.raises(ValueError, match="module:attr"):
        Ref("no_colon")
    with pytest.raises(AttributeError):
        LazyCallable("lit_mia.nets:no_such_builder")()

"""Claims files (conf/reproduce/<paper>.yaml): one paper's findings, each a measurable claim.

    paper:  {id, title, venue}
    claims:
      - id: ccs19-pgd-ia-over-natural      # unique over all files; `lit-mia reproduce ID`
        finding: one sentence
        paper_value: the paper's number, in words      source: "Table 9"
        experiment: default                 # a conf/experiment name ...
        overrides: [attack.calibrate=false] # ... plus overrides: `lit-mia run EXPERIMENT ...`
        statistic:                          # one metric, or the difference a - b
          a: {target: pgd, key: attack/ia/auc}
          b: {target: natural, key: attack/ia/auc}
        interval: bootstrap                 # how the 95% interval is formed (intervals.py)
        band: {direction: above, value: 0.0}   # fixed before running
        quick: [...]                        # overrides of the quick tier (one claim per paper)
        paper_tier: [...]                   # overrides at the paper's scale (GPU)

The cpu tier runs `experiment overrides`; quick appends `quick` (claims without it are not in
that tier); paper appends `paper_tier`. `validate_claims` resolves every tier's config through
the normal config path (unknown experiment, key or value: ConfigError naming it), checks that
each statistic's target is one of that experiment's targets and that each key is an attack key
(`metrics.keys.split_attack`) of an attack the experiment lists.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from lit_mia import config
from lit_mia.attacks.base import UPDATE_LEAKAGE
from lit_mia.attacks.registry import ATTACKS
from lit_mia.errors import ConfigError
from lit_mia.metrics import keys

CLAIMS_DIR = config.CONF_DIR / "reproduce"
TIERS = ("quick", "cpu", "paper")
DIRECTIONS = ("above", "below")
INTERVALS = ("bootstrap", "binomial", "paired_z")
UPDATES_LABEL = "updates"  # run.run_experiment's one result of an update-leakage experiment


@dataclass(frozen=True)
class Operand:
    """One logged metric of one target's run."""

    target: str
    key: str

    def text(self) -> str:
        return f"{self.target}:{self.key}"


@dataclass(frozen=True)
class Band:
    """Reproduced when the statistic's 95% interval lies entirely above (below) `value`."""

    direction: str
    value: float

    def text(self) -> str:
        return f"{'>' if self.direction == 'above' else '<'} {self.value:g}"


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    finding: str
    paper_value: str
    source: str
    experiment: str
    overrides: tuple[str, ...]
    a: Operand
    b: Operand | None
    band: Band
    interval: str = "bootstrap"
    n_key: str | None = None  # binomial: the config key holding the number of trials
    z_key: str | None = None  # paired_z: the metric key of the paired z statistic
    quick: tuple[str, ...] | None = None
    paper_tier: tuple[str, ...] = ()
    note: str = ""

    def statistic_text(self) -> str:
        return self.a.text() + (f" - {self.b.text()}" if self.b else "")

    def tier_overrides(self, tier: str) -> tuple[str, ...] | None:
        """The overrides of `tier`, None when the claim is not part of it."""
        if tier == "cpu":
            return self.overrides
        if tier == "quick":
            return None if self.quick is None else (*self.overrides, *self.quick)
        return (*self.overrides, *self.paper_tier)

    def command(self, tier: str = "cpu") -> str:
        """The `lit-mia run` command that measures this claim in `tier`."""
        return self.command_with(self.tier_overrides(tier) or ())

    def command_with(self, overrides) -> str:
        return " ".join(["lit-mia run", self.experiment, *(_quote(o) for o in overrides)])


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    venue: str
    claims: tuple[Claim, ...] = field(default_factory=tuple)


def _quote(o: str) -> str:
    return f"'{o}'" if any(c in o for c in ' []"') else o


def _req(d: dict, k: str, where: str):
    if k not in d or d[k] in (None, ""):
        raise ConfigError(f"{where}: missing '{k}'")
    return d[k]


def _strs(v, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: expected a list of key=value strings, got {v!r}")
    return tuple(v)


def _operand(d, where: str) -> Operand:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected {{target, key}}, got {d!r}")
    return Operand(str(_req(d, "target", where)), str(_req(d, "key", where)))


def _claim(d: dict, paper: str, where: str) -> Claim:
    cid = str(_req(d, "id", where))
    where = f"{where} claim {cid}"
    unknown = set(d) - {
        "id", "finding", "paper_value", "source", "experiment", "overrides", "statistic",
        "band", "interval", "n_key", "z_key", "quick", "paper_tier", "note",
    }  # fmt: skip
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    st = _req(d, "statistic", where)
    band = _req(d, "band", where)
    direction = str(_req(band, "direction", f"{where} band"))
    if direction not in DIRECTIONS:
        raise ConfigError(f"{where}: band.direction must be one of {DIRECTIONS}, got {direction}")
    interval = str(d.get("interval", "bootstrap"))
    if interval not in INTERVALS:
        raise ConfigError(f"{where}: interval must be one of {INTERVALS}, got {interval}")
    c = Claim(
        id=cid,
        paper=paper,
        finding=str(_req(d, "finding", where)),
        paper_value=str(_req(d, "paper_value", where)),
        source=str(_req(d, "source", where)),
        experiment=str(_req(d, "experiment", where)),
        overrides=_strs(d.get("overrides"), f"{where} overrides"),
        a=_operand(_req(st, "a", f"{where} statistic"), f"{where} statistic.a"),
        b=_operand(st["b"], f"{where} statistic.b") if st.get("b") is not None else None,
        band=Band(direction, float(_req(band, "value", f"{where} band"))),
        interval=interval,
        n_key=d.get("n_key"),
        z_key=d.get("z_key"),
        quick=None if d.get("quick") is None else _strs(d["quick"], f"{where} quick"),
        paper_tier=_strs(d.get("paper_tier"), f"{where} paper_tier"),
        note=str(d.get("note", "")),
    )
    if interval == "binomial" and not c.n_key:
        raise ConfigError(f"{where}: interval binomial needs n_key (the config key of n)")
    if interval == "paired_z" and (not c.z_key or c.b is None):
        raise ConfigError(f"{where}: interval paired_z needs z_key and a difference a - b")
    return c


def load_paper(path: Path) -> Paper:
    where = path.name
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with 'paper' and 'claims'")
    p = _req(raw, "paper", where)
    pid = str(_req(p, "id", f"{where} paper"))
    claims = tuple(_claim(c, pid, where) for c in _req(raw, "claims", where))
    return Paper(pid, str(_req(p, "title", where)), str(_req(p, "venue", where)), claims)


def load_papers(folder: Path = CLAIMS_DIR) -> list[Paper]:
    """Every claims file of `folder`, sorted by file name; claim ids unique across files."""
    if not Path(folder).is_dir():
        raise ConfigError(f"no claims folder {folder}")
    papers = [load_paper(p) for p in sorted(Path(folder).glob("*.yaml"))]
    if not papers:
        raise ConfigError(f"no claims files (*.yaml) in {folder}")
    seen: dict[str, str] = {}
    for p in papers:
        for c in p.claims:
            if c.id in seen:
                raise ConfigError(f"claim id {c.id} appears in {seen[c.id]} and {p.id}")
            seen[c.id] = p.id
    return papers


def all_claims(papers: list[Paper]) -> list[Claim]:
    return [c for p in papers for c in p.claims]


def select(papers: list[Paper], names: list[str], tier: str) -> list[Claim]:
    """The claims named (all of the tier when none), in file order. Unknown names and a bad
    tier are ConfigErrors listing the valid ones."""
    if tier not in TIERS:
        raise ConfigError(f"--tier must be one of {', '.join(TIERS)}, got {tier!r}")
    claims = all_claims(papers)
    ids = [c.id for c in claims]
    bad = [n for n in names if n not in ids]
    if bad:
        raise ConfigError(f"unknown claim(s) {', '.join(bad)}; valid: {', '.join(ids)}")
    chosen = [c for c in claims if not names or c.id in names]
    in_tier = [c for c in chosen if c.tier_overrides(tier) is not None]
    if not in_tier:
        raise ConfigError(f"none of the chosen claims is in the {tier} tier")
    return in_tier


@functools.lru_cache(maxsize=64)
def resolved(experiment: str, overrides: tuple[str, ...]) -> tuple:
    """config.per_target, once per (experiment, overrides): claims sharing a run share it.
    The configs are read, never changed."""
    return tuple(config.per_target(experiment, list(overrides)))


def resolve_target(target: str, labels: list[str]) -> str:
    """A statistic's target: a label of the experiment's results, or its position in them
    ("0", "1", ...: targets whose labels change between tiers, e.g. the training-set ladder)."""
    if target.isdigit():
        i = int(target)
        if i >= len(labels):
            raise ConfigError(f"target #{i} out of range: the run has {len(labels)} {labels}")
        return labels[i]
    if target not in labels:
        raise ConfigError(f"target {target!r} is not one of {labels}")
    return target


def result_labels(cfgs) -> list[str]:
    """The labels run.run_experiment gives the experiment's results."""
    if len(cfgs) == 1 and all(ATTACKS[a].kind == UPDATE_LEAKAGE for a in cfgs[0].attacks):
        return [UPDATES_LABEL]
    return [str(c.label or c.target.name) for c in cfgs]


def validate_claim(c: Claim, tier: str, extra: list[str] | None = None) -> None:
    """Resolve the claim's config in `tier` and check its statistic against it (see the module
    docstring); a ConfigError names the claim."""
    ov = c.tier_overrides(tier)
    if ov is None:
        return
    try:
        cfgs = resolved(c.experiment, (*ov, *(extra or ())))
        labels = result_labels(cfgs)
        attacks = {str(a) for a in cfgs[0].attacks}
        for op in (c.a, c.b) if c.b else (c.a,):
            resolve_target(op.target, labels)
            parts = keys.split_attack(op.key)
            if parts is None:
                raise ConfigError(f"{op.key!r} is not an attack metric key (attack/NAME/METRIC)")
            if parts[0] not in attacks:
                raise ConfigError(f"{op.key}: attack {parts[0]!r} not in attacks {sorted(attacks)}")
        if c.z_key and keys.split_attack(c.z_key) is None:
            raise ConfigError(f"z_key {c.z_key!r} is not an attack metric key")
        if c.n_key and OmegaConf.select(cfgs[0], c.n_key) is None:
            raise ConfigError(f"n_key {c.n_key!r} is not a key of the resolved config")
    except ConfigError as e:
        raise ConfigError(f"claim {c.id} ({tier} tier): {e}") from None


__all__ = [
    "CLAIMS_DIR",
    "DIRECTIONS",
    "INTERVALS",
    "TIERS",
    "Band",
    "Claim",
    "Operand",
    "Paper",
    "all_claims",
    "load_paper",
    "load_papers",
    "resolve_target",
    "resolved",
    "result_labels",
    "select",
    "validate_claim",
]

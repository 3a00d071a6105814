"""The YAML files of conf/: group names, reading one file, resolving an experiment or sweep spec."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_mia.attacks.registry import ATTACKS
from lit_mia.config.schema import CONF_DIR
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.registry import DATASETS, NETS
from lit_mia.targets import TARGETS


def _names_in(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def group_names(group: str) -> list[str]:
    """Names available for a config group: the registry's for target and attack, the
    registry's and conf/<group>/'s for net and data, else the YAML files under conf/<group>/."""
    if group == "target":
        return sorted(TARGETS)
    if group == "attack":
        return sorted(ATTACKS)
    if group in ("net", "data"):  # registry names (plug-ins too) and conf/<group>/*.yaml
        return sorted({*(NETS if group == "net" else DATASETS), *_names_in(CONF_DIR / group)})
    return _names_in(CONF_DIR / group)


def _read_yaml(path: Path) -> DictConfig:
    import yaml

    try:
        cfg = OmegaConf.load(path)
    except yaml.YAMLError as e:  # one line with file and line, not PyYAML's traceback
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {what}") from None
    except (OmegaConfBaseException, OSError, ValueError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path} must hold a mapping at top level")
    return cfg


def resolve_file(spec: str, folder: Path, kind: str) -> Path:
    """A name under `folder` (without .yaml) or a path to a YAML file."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or "/" in spec:
        if not p.is_file():
            raise ConfigError(f"{kind} file {spec!r} does not exist")
        return p
    candidate = folder / f"{spec}.yaml"
    if not candidate.is_file():
        raise unknown_name(kind, spec, _names_in(folder))
    return candidate

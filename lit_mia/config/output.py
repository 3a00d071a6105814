"""A resolved config as YAML (`to_yaml`) and as flat `key -> str` params (`flatten`)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg)


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, str]:
    """Flat `a.b.c -> str(value)` for MLflow params."""
    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, str] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out

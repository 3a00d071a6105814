"""Checks on output paths that create nothing (`--dry-run`, report output)."""

from __future__ import annotations

import os
from pathlib import Path

from lit_mia.errors import ConfigError


def creatable(path: str | Path, key: str) -> str:
    """'exists' or 'will be created' for a file or folder `path` (named `key` in messages);
    ConfigError when it cannot be written: its nearest existing ancestor is a file or a
    folder without write permission. Creates nothing."""
    p = Path(path).expanduser().absolute()
    if p.exists():
        if not os.access(p, os.W_OK):
            raise ConfigError(f"{key} {path}: not writable")
        return "exists"
    ancestor = p.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{key} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{key} {path}: folder {ancestor} is not writable")
    return "will be created"


__all__ = ["creatable"]

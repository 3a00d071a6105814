"""Loading `.pt` weight files safely, with errors that say what is wrong with the file.

Every `.pt` file lit_mia reads from a user (an audited checkpoint, a tensors file, a logged
`target.pt`) is opened with `torch.load(weights_only=True)`: tensors, containers and plain
numbers only, never pickled code. When that fails, PyTorch's own message advises loading with
`weights_only=False`, which runs whatever code the file holds; lit_mia never repeats that
advice. `load_weights` inspects the file instead and raises one ConfigError line naming what is
wrong: missing, empty, not a PyTorch file (text, a NumPy `.npz` archive), truncated or damaged
(a zip archive without its central directory), or holding Python objects beyond tensors (a
whole `nn.Module` saved with `torch.save(model)`, or a custom class), with how to re-save it.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from lit_mia.errors import ConfigError

PICKLE_PROTO = 0x80  # first byte of a protocol-2+ pickle (PyTorch's legacy, pre-1.6 format)
GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def diagnose(path: Path, error: BaseException) -> str:
    """What is wrong with the `.pt` file at `path` that `torch.load(weights_only=True)` refused
    with `error` (a phrase without PyTorch's advice)."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    head = path.read_bytes()[:4]
    found = GLOBAL.search(str(error))
    if found:
        name = found.group(1)
        what = "a whole module object" if ".nn.modules." in name else f"an object of {name}"
        return (
            f"holds {what}, not only tensors: lit_mia loads weights only and never unpickles "
            "code; re-save it with torch.save(model.state_dict(), PATH)"
        )
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            bad = z.testzip()
        if any(n.endswith(".npy") for n in names):
            return "is a NumPy .npz archive, not a torch.save file"
        if bad is not None:
            return f"is damaged: archive member {bad!r} fails its checksum"
        return f"is a zip archive that is not a torch.save file (members: {', '.join(names[:3])})"
    if head[:2] == b"PK":
        return (
            f"is truncated or damaged ({size} bytes, a zip archive without its central "
            "directory): copy or save it again"
        )
    if head[0] == PICKLE_PROTO:
        return f"is a damaged or truncated legacy torch.save file ({size} bytes)"
    try:
        path.read_bytes()[:256].decode("utf-8")
        return "is a text file, not a torch.save file"
    except UnicodeDecodeError:
        return f"is not a torch.save file (first bytes {head.hex()})"


def load_weights(path: str | Path, what: str = "checkpoint") -> Any:
    """`torch.load(path, map_location="cpu", weights_only=True)`; a ConfigError naming the
    problem (see the module docstring) when the file is missing or cannot be read that way."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"{what} {str(path)!r} {diagnose(p, e)}") from None

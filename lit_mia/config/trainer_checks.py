"""Range checks of the `trainer.*` keys, without importing Lightning (config.validate calls
`check_trainer_keys`; only a strategy outside `STRATEGIES` asks Lightning itself)."""

from __future__ import annotations

import re

from omegaconf import DictConfig, ListConfig

from lit_mia.errors import check_key

# The strategies of Lightning's StrategyRegistry that need no extra package (the check asks
# Lightning itself, importing it, only for a name outside this list: fsdp variants, deepspeed).
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "single_device")
STRATEGIES += tuple(f"{d}_find_unused_parameters_true" for d in STRATEGIES[1:5])

# Lightning's accepted `precision` strings (lightning_fabric.connector).
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
PRECISIONS += ("transformer-engine", "transformer-engine-float16", "32", "16", "bf16", "64")


def _check_devices(c: DictConfig) -> None:
    """Lightning `devices`: a count >= 1 or "auto"; on accelerators other than cpu also -1
    (all), an index list [0, 1] or an index string "0,1"."""
    dev, cpu = c.trainer.devices, c.trainer.accelerator == "cpu"
    if isinstance(dev, ListConfig):
        dev = list(dev)
    if isinstance(dev, bool):
        ok = False
    elif isinstance(dev, int):
        ok = dev >= 1 or (dev == -1 and not cpu)
    elif isinstance(dev, str):
        ok = (
            dev == "auto"
            or re.fullmatch(r"[1-9]\d*", dev) is not None
            or (not cpu and re.fullmatch(r"-1|(\d+,)+\d*", dev.replace(" ", "")) is not None)
        )
    elif isinstance(dev, list):
        ints = all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in dev)
        ok = not cpu and bool(dev) and ints
    else:
        ok = False
    allowed = "an int >= 1 or 'auto' (other accelerators than cpu: also -1 or a device list)"
    check_key(c, "trainer.devices", ok, allowed)


def check_trainer_keys(c: DictConfig) -> None:
    """Epochs, validation cadence, accelerator, determinism, devices, strategy, precision."""
    tr = c.trainer
    check_key(c, "trainer.max_epochs", tr.max_epochs >= 1, ">= 1")
    check_key(c, "trainer.val_adv_steps", tr.val_adv_steps >= 0, ">= 0")
    check_key(c, "trainer.val_every_n_epochs", tr.val_every_n_epochs >= 1, ">= 1")
    valid_acc = ("cpu", "gpu", "cuda", "mps", "auto")
    check_key(
        c, "trainer.accelerator", tr.accelerator in valid_acc, f"one of {', '.join(valid_acc)}"
    )
    det = tr.deterministic
    check_key(c, "trainer.deterministic", det in (True, False, "warn"), "true, false or warn")
    _check_devices(c)
    if tr.strategy not in STRATEGIES:  # a rarer one: ask Lightning (imports it)
        from pytorch_lightning.strategies import StrategyRegistry

        strategies = ("auto", *StrategyRegistry.available_strategies())
        check_key(
            c, "trainer.strategy", tr.strategy in strategies, f"one of {', '.join(strategies)}"
        )
    check_key(c, "trainer.precision", tr.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}")

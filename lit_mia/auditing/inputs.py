"""The user's side of an audit, in lit_mia's shapes: data, model and training recipe.

- `as_arrays`: members / non-members / shadow data given as `(x, y)` (tensors or numpy
  arrays) or as a torch Dataset of `(x, y)` items -> (x float32 [N, *shape], y int64 [N]).
- `pooled`: one `DatasetBundle` (members, then non-members, then shadow data) and the
  `MembershipSplit` that names those blocks, so every attack reads the data exactly as in a
  `lit-mia run`. Samples of any shape: a sample shape other than [C, H, W] is stored as
  [1, 1, D] and `Shaped` restores it before the user's model sees it.
- `AuditModel`: the user's `nn.Module` (logits [B, K]) behind lit_mia's target interface
  (`.net`, forward on bundle-shaped inputs), for the target and for shadow models alike.
- `fitter`: `ctx.fit(idx, seed, epochs=None)` from the user's `train_fn(x, y, seed=...)` or
  `module_factory()` (a LightningModule trained by fitting.fit_module, trainer.max_epochs).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from lit_mia.data.datasets import DatasetBundle
from lit_mia.data.splits import MembershipSplit
from lit_mia.errors import ConfigError
from lit_mia.fitting import fit_module


def as_arrays(data: Any, what: str) -> tuple[Tensor, Tensor]:
    """(x float32 [N, ...], y int64 [N]) from (x, y) or a Dataset of (x, y) items."""
    if isinstance(data, torch.utils.data.Dataset) and not isinstance(data, tuple | list):
        if len(data) == 0:  # type: ignore[arg-type]
            raise ConfigError(f"{what} is an empty dataset")
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        try:
            xs = torch.stack([torch.as_tensor(np.array(it[0])) for it in items])
            ys = torch.as_tensor([int(it[1]) for it in items])
        except (TypeError, ValueError, IndexError, RuntimeError) as e:
            raise ConfigError(
                f"{what}: dataset items must be (x, y) with equal-shaped x and int y ({e})"
            ) from None
        data = (xs, ys)
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise ConfigError(f"{what} must be (x, y) tensors or a torch Dataset of (x, y) items")
    x, y = (torch.as_tensor(np.array(v)) if not isinstance(v, Tensor) else v for v in data)
    if x.ndim < 2 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise ConfigError(
            f"{what}: x must be [N, ...] and y [N] with N >= 1, got x {tuple(x.shape)}, "
            f"y {tuple(y.shape)}"
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ConfigError(f"{what}: y must hold integer class labels, got {y.dtype}")
    x = x.detach().cpu().float()
    lo, hi = float(x.min()), float(x.max())
    if not (np.isfinite([lo, hi]).all() and lo >= 0.0 and hi <= 1.0):
        raise ConfigError(
            f"{what}: x must lie in [0, 1] (pixel space; put any normalisation inside the "
            f"model, as its first layer), got [{lo:g}, {hi:g}]"
        )
    return x.contiguous(), y.detach().cpu().to(torch.int64).contiguous()


def _row_keys(x: Tensor) -> dict[bytes, int]:
    return {row.tobytes(): i for i, row in enumerate(x.reshape(len(x), -1).numpy())}


def check_disjoint(parts: dict[str, tuple[Tensor, Tensor]]) -> None:
    """ConfigError if two of the named sets share an identical sample (x equal)."""
    keys = {name: _row_keys(x) for name, (x, _) in parts.items()}
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = keys[a].keys() & keys[b].keys()
            if common:
                first = sorted(keys[a][k] for k in common)[:5]
                raise ConfigError(
                    f"{a} and {b} share {len(common)} identical samples (e.g. {a} rows "
                    f"{first}); the sets must be disjoint"
                )


class Shaped(nn.Module):
    """`inner` on inputs [B, *bundle shape] reshaped to [B, *sample_shape]."""

    def __init__(self, inner: nn.Module, sample_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.inner = inner
        self.sample_shape = tuple(sample_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.inner(x.reshape(len(x), *self.sample_shape))


class AuditModel(nn.Module):
    """A user's model as a lit_mia target: `.net` holds it (behind `Shaped`); forward = net."""

    def __init__(self, model: nn.Module, sample_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.net = Shaped(model, sample_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def bundle_shape(sample_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """[C, H, W] samples stay; any other shape is flattened to [1, 1, D]."""
    if len(sample_shape) == 3:
        return tuple(sample_shape)  # type: ignore[return-value]
    return (1, 1, int(np.prod(sample_shape)))


def pooled(
    parts: dict[str, tuple[Tensor, Tensor]], n_classes: int, seed: int, name: str = "audit"
) -> tuple[DatasetBundle, MembershipSplit, tuple[int, ...]]:
    """The bundle of members, non-members and shadow data (in that order), their split and the
    user's sample shape. `parts` keys: members, nonmembers, shadow_data (optional)."""
    shapes = {k: tuple(x.shape[1:]) for k, (x, _) in parts.items()}
    if len(set(shapes.values())) > 1:
        raise ConfigError(f"members, nonmembers and shadow_data need one sample shape: {shapes}")
    for k, (_, y) in parts.items():
        if int(y.min()) < 0 or int(y.max()) >= n_classes:
            raise ConfigError(
                f"{k}: labels must be in [0, {n_classes}) (the model's {n_classes} logits), "
                f"got [{int(y.min())}, {int(y.max())}]"
            )
    check_disjoint(parts)
    sample = shapes["members"]
    x = torch.cat([p[0] for p in parts.values()]).reshape(-1, *bundle_shape(sample))
    y = torch.cat([p[1] for p in parts.values()])
    x64 = x.double()
    mean = tuple(x64.mean(dim=(0, 2, 3)).tolist())
    std = tuple(x64.std(dim=(0, 2, 3), correction=0).clamp_min(1e-12).tolist())
    bundle = DatasetBundle(name, x, y, n_classes, mean, std)
    sizes = [len(p[1]) for p in parts.values()]
    starts = np.cumsum([0, *sizes])
    blocks = {k: np.arange(starts[i], starts[i + 1]) for i, k in enumerate(parts)}
    empty = np.array([], dtype=np.int64)
    split = MembershipSplit(
        members=blocks["members"],
        validation=empty,
        nonmembers=blocks["nonmembers"],
        shadow=blocks.get("shadow_data", empty),
        probe=empty,
        seed=seed,
        n_total=len(y),
    )
    return bundle, split, sample


TrainFn = Callable[..., nn.Module]


class UserTrainer:
    """`trainer(idx, seed, epochs=None) -> AuditModel` (eval mode, CPU) with the user's recipe:
    the `fit` of the audit's AttackContext.

    train_fn is called as `train_fn(x, y, seed=seed)` on x [n, *sample_shape] and trains like
    the target did; `epochs=` is passed only when an attack asks for another count than
    trainer.max_epochs (attacks pass that as "like the target"), e.g. attack.lira.epochs.
    module_factory() builds a LightningModule trained on batches (x, y) for `epochs` (else
    trainer.max_epochs). `attack` names the attack being evaluated (set by `start`, the
    evaluation loop's on_attack), for the error when neither recipe is given."""

    def __init__(
        self,
        cfg: DictConfig,
        bundle: DatasetBundle,
        sample_shape: tuple[int, ...],
        train_fn: TrainFn | None,
        module_factory: Callable[[], pl.LightningModule] | None,
    ) -> None:
        self.cfg, self.bundle, self.sample_shape = cfg, bundle, sample_shape
        self.train_fn, self.module_factory = train_fn, module_factory
        self.attack = ""

    def start(self, attack: str) -> None:
        """The evaluation loop runs `attack` next."""
        self.attack = attack

    def __call__(self, idx, seed: int, epochs: int | None = None) -> AuditModel:
        cfg, bundle, sample_shape = self.cfg, self.bundle, self.sample_shape
        train_fn, module_factory = self.train_fn, self.module_factory
        if train_fn is None and module_factory is None:
            raise ConfigError(
                f"attack {self.attack} trains shadow/reference models like yours: pass "
                f"train_fn=(x, y, seed) -> model or module_factory=() -> LightningModule "
                f"to lit_mia.audit"
            )
        t = torch.tensor(np.asarray(idx), dtype=torch.long)  # a copy: idx may be read-only
        x, y = bundle.x[t].reshape(len(t), *sample_shape), bundle.y[t]
        pl.seed_everything(int(seed), workers=True, verbose=False)
        if train_fn is not None:
            kwargs: dict[str, Any] = {"seed": int(seed)}
            if epochs is not None and int(epochs) != int(cfg.trainer.max_epochs):
                kwargs["epochs"] = int(epochs)  # an attack's own count (attack.lira.epochs)
            model = train_fn(x.clone(), y.clone(), **kwargs)
            if not isinstance(model, nn.Module):
                raise ConfigError(f"train_fn returned {type(model).__name__}, not an nn.Module")
        else:
            assert module_factory is not None
            model = fit_module(
                module_factory(),
                (x, y),
                epochs=int(epochs or cfg.trainer.max_epochs),
                batch_size=int(cfg.data.batch_size),
                seed=int(seed),
                deterministic=cfg.trainer.deterministic,
                accelerator=str(cfg.trainer.accelerator),
            )
        return AuditModel(model.cpu().eval(), sample_shape).eval()


def accepts(fn: Callable, name: str) -> bool:
    """Whether `fn` takes keyword argument `name` (or **kwargs)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def template(model: nn.Module, sample_shape: tuple[int, ...]) -> Callable[[], nn.Module]:
    """`make_net`: an architecture template like `AuditModel(model).net` (for LiRA's stacked
    shadow predictions; parameters are replaced before use)."""
    return lambda: copy.deepcopy(AuditModel(model, sample_shape).net)


__all__ = [
    "AuditModel",
    "Shaped",
    "UserTrainer",
    "accepts",
    "as_arrays",
    "bundle_shape",
    "check_disjoint",
    "pooled",
    "template",
]

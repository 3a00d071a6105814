"""The shadow farm: many small models of one architecture trained together.

LiRA (Carlini et al. S&P 2022, §4-5) needs tens of shadow models per target; a Lightning fit
each costs seconds of setup and runs one small model at a time. The farm trains M models with
the target's regime and optimiser settings in one process, on one of two interchangeable paths:

- ``vmap``: ``torch.func.stack_module_state`` stacks the M models' parameters into [M, ...]
  tensors, ``functional_call`` + ``vmap`` runs all M forward passes as one batched call, with
  per-model minibatches x [M, B, ...]; the summed per-model losses are back-propagated once and
  ONE optimiser over the stacked parameters takes the step (Adam / SGD are elementwise, so this
  is exactly M independent optimisers). PGD examples are computed per model with
  ``vmap(grad(loss, argnums=input))``.
- ``loop``: a tight plain-PyTorch loop over the models (no Lightning), each with its own
  ``torch.optim`` optimiser and ``lit_mia.perturb.pgd.pgd`` for the PGD regime.

Both paths see the same randomness, so for the same seeds they give the same parameters up to
float rounding (tests/test_shadow_farm.py): model i is initialised by ``torch.manual_seed(seed_i);
make_net()`` and owns a CPU generator ``Generator().manual_seed(seed_i)`` from which, in this
order, one permutation of its training set per epoch is drawn up front (minibatches are
consecutive ``batch_size`` slices, the last one partial, as a shuffled DataLoader with
drop_last=False), then the PGD random starts batch by batch (U[-eps, eps], as ``pgd`` draws them).

``farm="auto"`` chooses by measurement: it times a few training steps of both paths on the real
data (after a warm-up step, in interleaved rounds) and keeps the faster (loop unless vmap is at
least 5% faster, 25% for convolutional nets on CPU); the choice is remembered per
(architecture, M, batch, regime, device). No fixed rule is right: on a 2-core CPU vmap over
convolutions can be slower than the loop while over MLPs it is faster (issue 4 reports ~2x
either way; bench/bench_farm.py measures it). Nets with Dropout (p > 0) or BatchNorm, whose
training forward is not a pure function of (params, x), and models with training sets of
different sizes always take the loop. The same code runs on GPU: the device is ``x``'s.

Reusable primitives (the Updates-Leak farm, lit_mia/attacks/update_leakage/farm.py, uses them too):

- ``stack_state(nets) -> (params, buffers)``: [M, ...] stacked copies (params are leaves with
  requires_grad, ready for an optimiser); ``stack_state_dicts(net, sds)`` does the same from
  state dicts (e.g. loaded from lit_mia.models.cache); ``unstack_state(params, buffers, i)``
  is model i's state dict.
- ``functional_net(net)``: a stateless copy (parameters on the meta device) to pass to
  ``functional_call``.
- ``ensemble_logits(net, params, buffers, x)``: logits [M, B, K] of all models, x shared
  [B, ...] or per-model [M, B, ...]; ``ensemble_predict`` chunks it over B without gradients.
- ``vmap_pgd(...)``: per-model L_inf PGD examples for x [M, B, ...].
- ``TrainSpec``: the training settings (regime, optimiser, batch size, epochs, PGD);
  ``train_farm(make_net, x, y, train_sets, seeds, spec, farm)`` -> ``Farm``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, stack_module_state, vmap

from lit_mia.errors import ConfigError, unknown_name
from lit_mia.perturb.pgd import pgd
from lit_mia.progress import steps
from lit_mia.targets.base import TargetSettings

FARMS = ("auto", "vmap", "loop")
REGIMES = ("natural", "pgd")
FARM_VERSION = 2
"""Version of the farm's training procedure (randomness order, batching); part of every cache
key of models it trains, bump it when a change alters the trained parameters."""


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class TrainSpec:
    """How every model of a farm is trained (the target's settings, conf/target/*.yaml).

    regime: natural (mean CE on benign batches, CCS'19 eq. 1) | pgd (mean CE on L_inf PGD
    examples of every row, Madry et al. 2018 / CCS'19 eq. 8, ratio 1). optimizer adam | sgd with
    lr, momentum (sgd), weight_decay as torch.optim; batch_size and epochs as the DataLoader /
    Trainer; eps, steps, step_size, random_start: the training PGD (pgd regime only).
    """

    regime: str = "natural"
    optimizer: str = TargetSettings.optimizer  # the target's defaults, not copies of them
    lr: float = TargetSettings.lr
    momentum: float = TargetSettings.momentum
    weight_decay: float = TargetSettings.weight_decay
    batch_size: int = 128
    epochs: int = 1
    eps: float = TargetSettings.eps
    steps: int = TargetSettings.steps
    step_size: float = TargetSettings.step_size
    random_start: bool = TargetSettings.random_start

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise unknown_name("farm regime", self.regime, REGIMES)
        if self.optimizer not in ("adam", "sgd"):
            raise unknown_name("optimizer", self.optimizer, ("adam", "sgd"))
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError(
                f"batch_size and epochs must be >= 1, got {self.batch_size}, {self.epochs}"
            )

    @property
    def adversarial(self) -> bool:
        """Whether training batches are replaced by PGD examples."""
        return self.regime == "pgd" and self.eps > 0 and self.steps > 0

    def fields(self) -> dict:
        """Plain dict of every setting (for cache keys)."""
        return asdict(self)


def make_optimizer(params: Sequence[Tensor], spec: TrainSpec) -> torch.optim.Optimizer:
    """The target's optimiser (targets/base.py configure_optimizers) over `params`, in torch's
    fused implementation where this build has one for the device (the same update; on CPU the
    fused Adam step is ~3x faster than the default per-tensor one), else the default."""
    kw = dict(lr=spec.lr, weight_decay=spec.weight_decay)
    cls = torch.optim.Adam
    if spec.optimizer == "sgd":
        cls, kw["momentum"] = torch.optim.SGD, spec.momentum
    try:
        return cls(params, fused=True, **kw)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, **kw)


# --------------------------------------------------------------------------- primitives
def vmappable(net: nn.Module) -> bool:
    """Whether the training forward of `net` is a pure function of (params, buffers, x), so
    the vmap path equals the loop: no Dropout with p > 0, no BatchNorm (running stats)."""
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0:
            return False
        if isinstance(m, nn.modules.batchnorm._NormBase):
            return False
    return True


def stack_state(nets: Sequence[nn.Module]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """(params, buffers) of M same-architecture nets stacked along a new dim 0: [M, ...].

    Copies: params are fresh leaves with requires_grad=True (hand them to an optimiser),
    buffers plain tensors; the nets are not touched.
    """
    if not nets:
        raise ValueError("stack_state needs at least one net")
    params, buffers = stack_module_state(list(nets))
    params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    buffers = {k: v.detach().clone() for k, v in buffers.items()}
    return params, buffers


def stack_state_dicts(
    net: nn.Module, state_dicts: Sequence[dict[str, Tensor]], device=None
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Like `stack_state` from state dicts of `net`'s architecture (params without grad)."""
    pnames = [k for k, _ in net.named_parameters()]
    bnames = [k for k, _ in net.named_buffers()]
    params = {k: torch.stack([sd[k] for sd in state_dicts]).to(device) for k in pnames}
    buffers = {k: torch.stack([sd[k] for sd in state_dicts]).to(device) for k in bnames}
    return params, buffers


def unstack_state(params: dict[str, Tensor], buffers: dict[str, Tensor], i: int) -> dict:
    """State dict (detached CPU copies) of model i of a stacked ensemble."""
    out = {k: v[i].detach().cpu().clone() for k, v in params.items()}
    out.update({k: v[i].detach().cpu().clone() for k, v in buffers.items()})
    return out


def functional_net(net: nn.Module) -> nn.Module:
    """A stateless copy of `net` (parameters and buffers on the meta device) for
    `functional_call`; its train/eval flags are `net`'s."""
    return copy.deepcopy(net).to("meta")


def _call(net: nn.Module) -> Callable[[dict, dict, Tensor], Tensor]:
    def f(p: dict, b: dict, x: Tensor) -> Tensor:
        return functional_call(net, (p, b), (x,))

    return f


def ensemble_logits(
    net: nn.Module,
    params: dict[str, Tensor],
    buffers: dict[str, Tensor],
    x: Tensor,
    per_model: bool | None = None,
) -> Tensor:
    """Logits [M, B, K] of the M stacked models.

    net: the architecture (any instance, e.g. `functional_net(...)`; its own weights are not
    used). x: [B, ...] shared by all models, or [M, B, ...] one batch per model. per_model: which
    of the two; None = per-model iff x is 5-D (every lit_mia net takes [B, C, H, W]).
    Differentiable wrt params and x; wrap in torch.no_grad() for prediction.
    """
    if per_model is None:
        per_model = x.dim() == 5
    return vmap(_call(net), in_dims=(0, 0, 0 if per_model else None))(params, buffers, x)


def ensemble_predict(
    net: nn.Module,
    params: dict[str, Tensor],
    buffers: dict[str, Tensor],
    x: Tensor,
    batch_size: int = 512,
) -> Tensor:
    """`ensemble_logits` over x [N, ...] (shared) in chunks of `batch_size`, no gradients, eval
    mode; returns [M, N, K] on the CPU. x is moved to the params' device chunk by chunk."""
    device = next(iter(params.values())).device
    fnet = functional_net(net).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(
                ensemble_logits(fnet, params, buffers, x[i : i + batch_size].to(device), False)
            )
    return torch.cat(out, dim=1).cpu()


def vmap_pgd(
    net: nn.Module,
    params: dict[str, Tensor],
    buffers: dict[str, Tensor],
    x: Tensor,
    y: Tensor,
    eps: float,
    steps: int,
    step_size: float,
    noise: Tensor | None = None,
) -> Tensor:
    """Untargeted L_inf PGD per model (the update of lit_mia.perturb.pgd.pgd, batched).

    x [M, B, ...] in [0, 1], y [M, B]; each model attacks its own batch with its own params
    (detached here). noise: U[0, 1) of x's shape for the random start x + (2u - 1) eps, or None
    for no random start. Returns detached x_adv [M, B, ...] within the eps-ball and [0, 1].
    """
    x = x.detach()
    if eps == 0 or steps == 0:
        return x.clone()
    p = {k: v.detach() for k, v in params.items()}
    f = _call(net)

    def loss(pi, bi, xi, yi):
        return F.cross_entropy(f(pi, bi, xi), yi, reduction="sum")

    g = vmap(grad(loss, argnums=2))
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    x_adv = x.clone()
    if noise is not None:
        x_adv = torch.min(torch.max(x_adv + (2 * noise.to(x) - 1) * eps, lower), upper)
    with torch.enable_grad():
        for _ in range(steps):
            x_adv = x_adv + step_size * g(p, buffers, x_adv, y).sign()
            x_adv = torch.min(torch.max(x_adv, lower), upper)
    return x_adv.detach()


# --------------------------------------------------------------------------- training
@dataclass
class Farm:
    """M trained models: `net` (CPU template, eval mode) and their stacked `params`/`buffers`
    ([M, ...], on the training device, no grad). `path`: vmap | loop; `seconds`: training time.
    """

    net: nn.Module
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    path: str
    seconds: float

    def __len__(self) -> int:
        return int(next(iter(self.params.values())).shape[0])

    def state_dict(self, i: int) -> dict[str, Tensor]:
        return unstack_state(self.params, self.buffers, i)

    def module(self, i: int) -> nn.Module:
        """Model i as a plain module (CPU, eval mode)."""
        m = copy.deepcopy(self.net)
        m.load_state_dict(self.state_dict(i))
        return m.eval()

    def logits(self, x: Tensor, batch_size: int = 512) -> Tensor:
        """[M, N, K] logits of every model on x [N, ...] (CPU)."""
        return ensemble_predict(self.net, self.params, self.buffers, x, batch_size)


def _schedules(train_sets, seeds, epochs) -> tuple[list[torch.Generator], list[list[Tensor]]]:
    """Per model: its generator and one permutation of positions per epoch (drawn up front)."""
    gens, perms = [], []
    for idx, s in zip(train_sets, seeds, strict=True):
        g = torch.Generator().manual_seed(int(s))
        perms.append([torch.randperm(len(idx), generator=g) for _ in range(epochs)])
        gens.append(g)
    return gens, perms


def _init_nets(make_net: Callable[[], nn.Module], seeds, device) -> list[nn.Module]:
    """make_net() under torch.manual_seed(seed) per model; the global RNG state is restored."""
    nets = []
    with torch.random.fork_rng(devices=[]):
        for s in seeds:
            torch.manual_seed(int(s))
            nets.append(make_net().to(device).train())
    return nets


def _batches(n: int, bs: int) -> list[slice]:
    return [slice(k, min(k + bs, n)) for k in range(0, n, bs)]


def _train_loop(nets, x, y, sets, gens, perms, spec: TrainSpec, max_steps=None) -> None:
    """The loop path: model after model, plain PyTorch (see the module docstring)."""
    for net, idx, g, model_perms in zip(nets, sets, gens, perms, strict=True):
        opt = make_optimizer(list(net.parameters()), spec)
        idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        done = 0  # steps of this model (max_steps: per model, as the vmap path's steps)
        for perm in model_perms:
            if max_steps is not None and done >= max_steps:
                break
            order = idx_t[perm].to(x.device)
            for sl in _batches(len(order), spec.batch_size):
                if max_steps is not None and done >= max_steps:
                    break
                xb, yb = x[order[sl]], y[order[sl]]
                if spec.adversarial:
                    xb = pgd(
                        net, xb, yb, spec.eps, spec.steps, spec.step_size,
                        random_start=spec.random_start, generator=g,
                    )  # fmt: skip
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(xb), yb).backward()
                opt.step()
                done += 1


def _train_vmap(nets, x, y, sets, gens, perms, spec: TrainSpec, max_steps=None):
    """The vmap path: all models step together (see the module docstring). Returns the
    stacked (params, buffers)."""
    params, buffers = stack_state(nets)
    fnet = functional_net(nets[0]).train()
    f = vmap(_call(fnet))
    opt = make_optimizer(list(params.values()), spec)
    idx_t = torch.stack([torch.as_tensor(np.asarray(s), dtype=torch.long) for s in sets])  # [M,n]
    done = 0
    for e in range(len(perms[0])):
        order = torch.stack([idx_t[i][p[e]] for i, p in enumerate(perms)]).to(x.device)  # [M,n]
        for sl in _batches(order.shape[1], spec.batch_size):
            if max_steps is not None and done >= max_steps:
                return params, buffers
            xb, yb = x[order[:, sl]], y[order[:, sl]]  # [M,B,...], [M,B]
            if spec.adversarial:
                noise = None
                if spec.random_start:
                    shape, dt = xb.shape[1:], xb.dtype
                    noise = torch.stack([torch.rand(shape, generator=g, dtype=dt) for g in gens])
                xb = vmap_pgd(
                    fnet, params, buffers, xb, yb, spec.eps, spec.steps, spec.step_size, noise
                )
            logits = f(params, buffers, xb)  # [M,B,K]
            b = yb.shape[1]
            loss = F.cross_entropy(logits.flatten(0, 1), yb.flatten(), reduction="sum") / b
            opt.zero_grad(set_to_none=True)
            loss.backward()  # d(sum of per-model means)/d(model i) = d(mean_i)/d(model i)
            opt.step()
            done += 1
    return params, buffers


MARGIN = 0.95
"""auto takes vmap only if its measured step time is below MARGIN x the loop's."""
CPU_CONV_MARGIN = 0.75
"""The stricter margin for convolutional nets on CPU (vmap ~2x slower there, issue 4)."""


def choose_farm(
    make_net: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    train_sets: Sequence[np.ndarray],
    spec: TrainSpec,
    steps: int = 2,
    rounds: int = 2,
    choices: dict[tuple, str] | None = None,
) -> str:
    """`vmap` or `loop` for these models, by timing `steps` training steps of all M models on
    each path, interleaved over `rounds` rounds after one warm-up step each (the minimum per
    path counts, robust to a busy machine), on the first batches of the real data. `loop`
    unless vmap is below MARGIN x the loop's time (CPU_CONV_MARGIN for convolutional nets on
    CPU), and `loop` outright when vmap cannot reproduce the loop (`vmappable`, equal sizes).
    `choices` (the caller's: one per run) holds the decisions measured so far, keyed by
    (architecture, M, batch size, regime, device); none carries over between runs unseen."""
    probe = make_net()
    if not vmappable(probe) or len({len(s) for s in train_sets}) != 1:
        return "loop"
    m = len(train_sets)
    key = (repr(probe), tuple(x.shape[1:]), m, spec.batch_size, spec.adversarial, spec.steps,
           str(x.device))  # fmt: skip
    if choices is not None and key in choices:
        return choices[key]
    seeds = list(range(m))
    paths = {"loop": _train_loop, "vmap": _train_vmap}
    times: dict[str, float] = {p: float("inf") for p in paths}

    def run(fn, n_steps: int) -> float:
        nets = _init_nets(make_net, seeds, x.device)
        gens, perms = _schedules(train_sets, seeds, 1)
        _sync(x.device)
        t0 = time.perf_counter()
        fn(nets, x, y, train_sets, gens, perms, spec, max_steps=n_steps)
        _sync(x.device)
        return (time.perf_counter() - t0) / n_steps

    for fn in paths.values():
        run(fn, 1)  # warm-up
    for _ in range(rounds):
        for p, fn in paths.items():
            times[p] = min(times[p], run(fn, steps))
    conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in probe.modules())
    margin = CPU_CONV_MARGIN if (conv and x.device.type == "cpu") else MARGIN
    choice = "vmap" if times["vmap"] < margin * times["loop"] else "loop"
    if choices is not None:
        choices[key] = choice
    return choice


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_farm(
    make_net: Callable[[], nn.Module],
    x: Tensor,
    y: Tensor,
    train_sets: Sequence[np.ndarray],
    seeds: Sequence[int],
    spec: TrainSpec,
    farm: str = "auto",
    choices: dict[tuple, str] | None = None,
) -> Farm:
    """Train len(seeds) models; model i on rows `train_sets[i]` of (x [N, ...], y [N]) with
    init and batch order from `seeds[i]`, on x's device. farm: auto (choose_farm) | vmap | loop.

        make_net() builds one untrained net (called under torch.manual_seed(seed_i)). The vmap path
        needs equal-sized training sets and a `vmappable` net (ConfigError when forced otherwise);
        the caller's global torch RNG state is left as it was. Loop path: progress i/N models."""
    if farm not in FARMS:
        raise unknown_name("farm (attack.lira.farm)", farm, FARMS)
    if len(train_sets) != len(seeds) or not seeds:
        raise ValueError(f"need one seed per training set, got {len(seeds)} / {len(train_sets)}")
    if farm == "auto":
        farm = choose_farm(make_net, x, y, train_sets, spec, choices=choices)
    nets = _init_nets(make_net, seeds, x.device)
    if farm == "vmap":
        if not vmappable(nets[0]):
            raise ConfigError(
                "attack.lira.farm=vmap needs a net without Dropout/BatchNorm; use auto or loop"
            )
        if len({len(s) for s in train_sets}) != 1:
            raise ConfigError("attack.lira.farm=vmap needs training sets of one size")
    gens, perms = _schedules(train_sets, seeds, spec.epochs)
    _sync(x.device)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):  # dropout (loop path)
        if farm == "vmap":
            params, buffers = _train_vmap(nets, x, y, train_sets, gens, perms, spec)
        else:
            _train_loop(nets, x, y, train_sets, gens, steps(perms, "shadow models (loop)"), spec)
            params, buffers = stack_state(nets)
    _sync(x.device)
    seconds = time.perf_counter() - t0
    params = {k: v.detach() for k, v in params.items()}
    template = copy.deepcopy(nets[0]).cpu().eval()
    return Farm(template, params, buffers, farm, seconds)


__all__ = [
    "FARMS",
    "FARM_VERSION",
    "REGIMES",
    "Farm",
    "TrainSpec",
    "choose_farm",
    "ensemble_logits",
    "ensemble_predict",
    "functional_net",
    "make_optimizer",
    "stack_state",
    "stack_state_dicts",
    "train_farm",
    "unstack_state",
    "vmap_pgd",
    "vmappable",
]

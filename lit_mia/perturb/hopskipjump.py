"""HopSkipJump (Chen, Jordan, Wainwright, IEEE S&P 2020): untargeted, L2 and L_inf, batched.

A decision-based attack: it only asks a label oracle `oracle(x [M, *], owners [M]) -> labels [M]`
and walks along the decision boundary towards the original input. Li & Zhang CCS'21 §4 (the
boundary attack) use ART's implementation with norm 2, max_iter 50, max_eval 10000,
init_eval 100, init_size 100 (docs/reference/paper-defaults.md#label-only-membership-inference);
this module follows ART 1.x's variant of the algorithm step for step, so distances are
comparable with the released code:

    label check      1 query; a sample the oracle already misclassifies (label != y) is done
                     with distance 0 (Li & Zhang Algorithm 2, lines 2-4).
    initialisation   up to `init_size` uniform random images in [lo, hi], one query each, until
                     one is classified != y; then a binary search on the segment x -> random
                     image (L2 interpolation) to a relative precision of 0.001 (10 queries).
                     No adversarial image among the draws: the sample *failed* (kept, counted).
    iteration t      (t = 0 .. max_iter-1)
        delta        0.1 * (hi - lo) at t = 0, else sqrt(d) * theta * ||x_t - x||_2 (L2) or
                     d * theta * ||x_t - x||_inf (L_inf)
        binary search towards x: L2 on the segment (alpha in [0, 1], stop at theta), L_inf on
                     the radius of the clip box around x (stop at min(theta * r, theta))
        gradient     num_eval = min(int(init_eval * sqrt(t + 1)), max_eval) queries at
                     clip(x_t + delta * u), u unit-L2 Gaussian (L2) or uniform [-1, 1] (L_inf)
                     directions; baseline-subtracted mean of +-1 decisions times directions;
                     update = grad / ||grad||_2 (L2) or sign(grad) (L_inf)
        step size    eps = ||x_t - x|| / sqrt(t + 1), halved until clip(x_t + eps * update) is
                     adversarial (one query per try); x_{t+1} is that point
    theta            0.01 / sqrt(d) (L2), 0.01 / d (L_inf): ART's binary-search threshold.

Batched: every sample carries its own state (point, binary-search interval, delta, step size,
query count, iteration) and its own `torch.Generator` seeded from `seeds[i]`, so all active
samples advance together and the oracle sees one large batch per phase, yet each sample draws
exactly the random numbers it would draw alone: the batched result per sample equals running
the sample by itself with the same seed (up to the oracle's own batch-size dependence in
floating point, which a label rarely feels).

Query budget: `budget` caps every sample's queries. A sample stops at the first phase step that
would exceed it (one binary-search or step-size query, or one whole gradient estimate) and keeps
its current adversarial point. Because a sample's phases never depend on the budget, the state
a run with budget b ends in equals the state a larger run had just before its query count first
passed b: `checkpoints=[b1, b2, ...]` reads all of them from one run (AUC vs queries, Fig. 9).

Distances (`lp_distances`): L0 (features changed at all), L1, L2, L_inf of x_adv - x, in
float64. Misclassified samples: 0. Failed samples (no adversarial point found, or the budget
ran out first): the distance from x to the farthest corner of the [lo, hi] box in each norm, an
upper bound of any boundary distance, so a failure ranks as "far from the boundary" (member-like)
instead of being dropped or mislabelled.

Code: `hopskipjump` drives one `_State` through the phases `_label_check`, `_initialise`, then per
iteration `_boundary_search` (`_binary_search`), `_estimate_update`, `_geometric_step`; `_result`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from lit_mia.errors import ConfigError
from lit_mia.progress import steps

Oracle = Callable[[Tensor, Tensor], Tensor]
"""(x [M, *], owners [M] int64) -> predicted labels [M] int64."""

NORMS = ("0", "1", "2", "inf")
"""Distance norms reported for every sample (Li & Zhang Fig. 8)."""
ATTACK_NORMS = ("2", "inf")
"""Norms HopSkipJump itself can minimise."""

SUCCESS, MISCLASSIFIED, FAILED = 0, 1, 2
INIT_SEARCH_TOL = 0.001  # relative precision of the initial blend search (ART)
INIT_SEARCH_STEPS = 10  # ceil(log2(1 / INIT_SEARCH_TOL))
MAX_HALVINGS = 64  # step-size search: float32 step underflows long before


def parse_norm(norm: str | int | float, allowed: Sequence[str] = NORMS, key: str = "norm") -> str:
    """'2', 2, 2.0 -> '2'; 'inf', inf, 'linf' -> 'inf'; ConfigError naming `key` otherwise."""
    s = str(norm).strip().lower()
    s = {"linf": "inf", "l_inf": "inf", "np.inf": "inf"}.get(s, s)
    if s.endswith(".0"):
        s = s[:-2]
    if s not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {norm!r}")
    return s


def min_queries(init_eval: int) -> int:
    """Fewest queries of one full HopSkipJump round for a correctly classified sample:
    the label check, one initial draw and its blend search (10), one gradient estimate
    (`init_eval`) and one step-size query. Budgets below this cannot take a single step."""
    return 1 + 1 + INIT_SEARCH_STEPS + int(init_eval) + 1


def sample_seeds(seed: int, ids: Sequence[int] | np.ndarray) -> list[int]:
    """Per-sample generator seeds from a run seed and stable sample ids (e.g. dataset indices)."""
    return [int(np.random.SeedSequence([int(seed), int(i)]).generate_state(1)[0]) for i in ids]


def theta_of(d: int, norm: str) -> float:
    """ART's binary-search threshold: 0.01 / sqrt(d) (L2), 0.01 / d (L_inf)."""
    return 0.01 / math.sqrt(d) if norm == "2" else 0.01 / d


def lp_distances(x: Tensor, x_adv: Tensor) -> dict[str, Tensor]:
    """L0, L1, L2, L_inf norms of x_adv - x per sample (float64, [N])."""
    diff = (x_adv.reshape(len(x_adv), -1).double() - x.reshape(len(x), -1).double()).cpu()
    return {
        "0": (diff != 0).sum(1).double(),
        "1": diff.abs().sum(1),
        "2": diff.norm(dim=1),
        "inf": diff.abs().amax(1) if diff.shape[1] else torch.zeros(len(diff), dtype=torch.float64),
    }


def box_bound(x: Tensor, lo: float = 0.0, hi: float = 1.0) -> dict[str, Tensor]:
    """Distance from x to the farthest corner of [lo, hi]^d in each norm (float64, [N])."""
    xf = x.reshape(len(x), -1).double().cpu()
    far = torch.maximum(xf - lo, hi - xf)
    return {
        "0": torch.full((len(xf),), float(xf.shape[1]), dtype=torch.float64),
        "1": far.sum(1),
        "2": far.norm(dim=1),
        "inf": far.amax(1),
    }


@dataclass
class HSJResult:
    """Per-sample outcome. status: SUCCESS (0), MISCLASSIFIED (1, distance 0), FAILED (2,
    box-bound distance). `at_budget[b]` / `failed_at_budget[b]`: distances and failure flags of
    the state after at most b queries (the `checkpoints`)."""

    x_adv: Tensor
    distances: dict[str, Tensor]
    status: np.ndarray
    queries: np.ndarray
    iterations: np.ndarray
    exhausted: np.ndarray  # the budget stopped the sample before max_iter
    at_budget: dict[int, dict[str, Tensor]] = field(default_factory=dict)
    failed_at_budget: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return int((self.status == FAILED).sum())

    @property
    def misclassified(self) -> int:
        return int((self.status == MISCLASSIFIED).sum())


@dataclass(eq=False)
class _State:
    """Mutable batch state of one run: N samples of d features; numpy arrays are [N]."""

    oracle: Oracle  # labels of rows reshaped to [M, *shape]
    x: Tensor  # [N, d] original inputs (reshape of the caller's x)
    y: np.ndarray  # [N] true labels
    owners: np.ndarray  # [N] oracle owner of each sample's queries
    gens: list[torch.Generator]  # [N] one generator per sample
    shape: tuple[int, ...]  # one sample's shape
    norm: str  # "2" or "inf", the norm the attack minimises
    lo: float
    hi: float
    budget: int  # queries per sample
    ckpts: list[int]  # sorted checkpoint budgets
    query_rows: int  # rows per gradient-estimation oracle call
    cur: Tensor = field(init=False)  # [N, d] current point (adversarial once has_adv)
    q: np.ndarray = field(init=False)  # [N] queries spent
    has_adv: np.ndarray = field(init=False)  # [N] cur is adversarial
    done: np.ndarray = field(init=False)  # [N] finished: misclassified, failed or stopped
    exhausted: np.ndarray = field(init=False)  # [N] the budget stopped the sample
    status: np.ndarray = field(init=False)  # [N] SUCCESS / MISCLASSIFIED / FAILED
    started: np.ndarray = field(init=False)  # sample ids that entered the iterations
    iterations: np.ndarray = field(init=False)  # [N] completed iterations
    delta: np.ndarray = field(init=False)  # [N] gradient-estimation radius
    snap_x: dict[int, Tensor | None] = field(init=False)  # checkpoint b -> [N, d] points
    snap_has: dict[int, np.ndarray] = field(init=False)  # checkpoint b -> [N] has_adv
    snapped: dict[int, np.ndarray] = field(init=False)  # checkpoint b -> [N] snapshot taken

    def __post_init__(self) -> None:
        n = len(self.x)
        self.d = int(np.prod(self.shape)) if self.shape else 1
        self.theta = theta_of(self.d, self.norm)
        self.dev, self.dt = self.x.device, self.x.dtype
        self.cur = self.x.clone()
        self.q, self.iterations = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        self.has_adv, self.done, self.exhausted = (np.zeros(n, dtype=bool) for _ in range(3))
        self.status = np.full(n, SUCCESS, dtype=np.int8)
        self.started = np.zeros(0, dtype=np.int64)
        self.delta = np.zeros(n)
        self.snap_x = {b: None for b in self.ckpts}
        self.snap_has = {b: np.zeros(n, dtype=bool) for b in self.ckpts}
        self.snapped = {b: np.zeros(n, dtype=bool) for b in self.ckpts}

    def ix(self, a: np.ndarray) -> Tensor:
        """Numpy indices / masks -> index tensor on x's device."""
        return torch.as_tensor(a, device=self.dev)

    def dist(self, idx: np.ndarray, which: str) -> np.ndarray:
        """L2 or L_inf norm of cur - x for samples idx [M] -> float64 [M]."""
        diff = (self.cur[self.ix(idx)] - self.x[self.ix(idx)]).double()
        out = diff.norm(dim=1) if which == "2" else diff.abs().amax(1)
        return out.cpu().numpy()

    def gate(self, idx: np.ndarray, cost: int) -> np.ndarray:
        """The samples of idx that may spend `cost` more queries; snapshot the state of those
        crossing a checkpoint, stop (done, exhausted) those the budget does not allow."""
        if idx.size == 0:
            return idx
        q0, q1 = self.q[idx], self.q[idx] + cost
        for b in self.ckpts:
            cross = idx[(q0 <= b) & (q1 > b) & ~self.snapped[b][idx]]
            if cross.size:
                if self.snap_x[b] is None:
                    self.snap_x[b] = torch.empty_like(self.cur)
                t = torch.as_tensor(cross, device=self.cur.device)
                self.snap_x[b][t] = self.cur[t]
                self.snap_has[b][cross] = self.has_adv[cross]
                self.snapped[b][cross] = True
        ok = q1 <= self.budget
        stop = idx[~ok]
        self.done[stop] = True
        self.exhausted[stop] = True
        return idx[ok]

    def ask(self, rows: Tensor, idx: np.ndarray) -> np.ndarray:
        """Query rows [M, d] for samples idx [M]; True where the label differs from y."""
        own = torch.as_tensor(self.owners[idx])
        labels = self.oracle(rows.reshape(len(rows), *self.shape), own)
        self.q += np.bincount(idx, minlength=self.q.size)
        return labels.cpu().numpy() != self.y[idx]


def hopskipjump(
    oracle: Oracle,
    x: Tensor,
    y: Tensor,
    *,
    norm: str | int | float = "2",
    max_iter: int = 50,
    max_eval: int = 10000,
    init_eval: int = 100,
    init_size: int = 100,
    budget: int | None = None,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    owners: Sequence[int] | np.ndarray | None = None,
    checkpoints: Sequence[int] = (),
    query_rows: int = 1024,
    clip: tuple[float, float] = (0.0, 1.0),
) -> HSJResult:
    """Untargeted HopSkipJump on every sample of x [N, *] with true labels y [N].

    oracle: label oracle; queries for sample i are charged to `owners[i]` (default i).
    norm: "2" or "inf" (the norm the attack minimises; all four distances are reported).
    budget: queries per sample (None: only max_iter limits). seeds: one generator seed per
    sample (default `sample_seeds(seed, range(N))`). checkpoints: budgets whose states to keep.
    query_rows: rows per gradient-estimation oracle call (memory bound; not per-sample state).
    """
    norm = _check_config(norm, max_iter, init_size, init_eval, max_eval, len(x), len(y))
    st = _new_state(oracle, x, y, norm, budget, seeds, seed, owners, checkpoints, query_rows, clip)
    _initialise(st, _label_check(st), init_size)
    for t in steps(range(max_iter), f"HopSkipJump iterations ({len(x)} samples)"):
        act = st.started[~st.done[st.started]]
        if act.size == 0:
            break
        _boundary_search(st, act, t)
        act = act[~st.done[act]]
        num_eval = min(int(init_eval * math.sqrt(t + 1)), max_eval)
        act = st.gate(act, num_eval)
        if act.size == 0:
            continue
        _geometric_step(st, act, _estimate_update(st, act, num_eval), t)
    return _result(st)


def _check_config(norm, max_iter, init_size, init_eval, max_eval, n: int, n_y: int) -> str:
    """Validate the run settings (ConfigError otherwise); returns the parsed norm."""
    norm = parse_norm(norm, ATTACK_NORMS, "norm")
    for k, v in dict(max_iter=max_iter, init_size=init_size).items():
        if v < 0:
            raise ConfigError(f"{k} must be >= 0, got {v}")
    if init_eval < 1 or max_eval < init_eval:
        raise ConfigError(f"need 1 <= init_eval <= max_eval, got {init_eval}, {max_eval}")
    if n_y != n:
        raise ConfigError(f"x and y differ in length: {n} vs {n_y}")
    return norm


def _new_state(oracle, x, y, norm, budget, seeds, seed, owners, checkpoints, query_rows, clip):
    """Fresh _State for x [N, *] / y [N]: per-sample generators, owners, budget cap."""
    n = len(x)
    seeds = sample_seeds(seed, range(n)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n:
        raise ConfigError(f"seeds needs one entry per sample ({n}), got {len(seeds)}")
    own = np.arange(n) if owners is None else np.asarray(owners, dtype=np.int64).reshape(-1)
    cap = np.iinfo(np.int64).max // 4 if budget is None else int(budget)
    return _State(
        oracle=oracle,
        x=x.detach().reshape(n, -1),
        y=y.reshape(-1).cpu().numpy(),
        owners=own,
        gens=[torch.Generator(device=x.device).manual_seed(s) for s in seeds],
        shape=tuple(x.shape[1:]),
        norm=norm,
        lo=float(clip[0]),
        hi=float(clip[1]),
        budget=cap,
        ckpts=sorted({int(b) for b in checkpoints}),
        query_rows=query_rows,
    )


def _label_check(st: _State) -> np.ndarray:
    """1 query on x [N, d]; misclassified ones are done (Alg. 2, l. 2-4); returns ids [A] left."""
    active = st.gate(np.arange(len(st.x)), 1)
    if active.size:
        wrong = st.ask(st.x[st.ix(active)], active)
        mis = active[wrong]
        st.has_adv[mis] = True
        st.done[mis] = True
        active = active[~wrong]
    st.status[np.flatnonzero(st.done & st.has_adv)] = MISCLASSIFIED
    return active


def _initialise(st: _State, active: np.ndarray, init_size: int) -> None:
    """Uniform random [A, d] draws until adversarial, then the L2 blend search; sets started."""
    searching = active
    for _ in range(init_size):
        searching = st.gate(searching, 1)
        if searching.size == 0:
            break
        cand = torch.stack(
            [torch.rand(st.d, generator=st.gens[i], device=st.dev, dtype=st.dt) for i in searching]
        )
        cand = cand * (st.hi - st.lo) + st.lo
        ok = st.ask(cand, searching)
        found = searching[ok]
        st.cur[st.ix(found)] = cand[st.ix(ok)]
        st.has_adv[found] = True
        searching = searching[~ok]
    st.done[searching] = True  # no adversarial draw: failed (or budget-stopped)
    st.started = active[st.has_adv[active] & ~st.done[active]]
    _binary_search(st, st.started, "2", np.full(st.started.size, INIT_SEARCH_TOL))


def _interpolate(st: _State, start: Tensor, orig: Tensor, alpha: np.ndarray, how: str) -> Tensor:
    """Points [M, d] between orig and start [M, d] at alpha [M]: L2 blend or L_inf clip box."""
    a = torch.as_tensor(alpha, dtype=st.dt, device=st.dev)[:, None]
    if how == "2":
        return (1 - a) * orig + a * start
    return torch.minimum(torch.maximum(start, orig - a), orig + a)


def _binary_search(st: _State, idx: np.ndarray, how: str, thr: np.ndarray) -> None:
    """Move st.cur[idx] [M, d] towards x along `how`'s path until the interval is below thr [M]."""
    if idx.size == 0:
        return
    t = st.ix(idx)
    start, orig = st.cur[t].clone(), st.x[t]
    high = np.ones(idx.size) if how == "2" else st.dist(idx, "inf")
    low = np.zeros(idx.size)
    pos = np.arange(idx.size)
    while True:
        pos = pos[(high[pos] - low[pos]) > thr[pos]]
        allowed = st.gate(idx[pos], 1)
        pos = pos[np.isin(idx[pos], allowed)]
        if pos.size == 0:
            return
        mid = (high[pos] + low[pos]) / 2.0
        pts = _interpolate(st, start[st.ix(pos)], orig[st.ix(pos)], mid, how)
        ok = st.ask(pts, idx[pos])
        low[pos[~ok]] = mid[~ok]
        high[pos[ok]] = mid[ok]
        st.cur[st.ix(idx[pos[ok]])] = pts[st.ix(ok)]


def _boundary_search(st: _State, act: np.ndarray, t: int) -> None:
    """Iteration t: set delta [A] from ||x_t - x||, then binary-search st.cur[act] [A, d]."""
    if t == 0:
        st.delta[act] = 0.1 * (st.hi - st.lo)
    else:
        scale = math.sqrt(st.d) if st.norm == "2" else st.d
        st.delta[act] = scale * st.theta * st.dist(act, st.norm)
    if st.norm == "2":
        thr = np.full(act.size, st.theta)
    else:
        thr = np.minimum(st.dist(act, "inf") * st.theta, st.theta)
    _binary_search(st, act, st.norm, thr)


def _estimate_update(st: _State, act: np.ndarray, num_eval: int) -> Tensor:
    """HSJ gradient-direction estimate at st.cur[act] from num_eval label queries per sample
    (ART's baseline-subtracted Monte Carlo estimate); returns [len(act), d] update directions."""
    cur, dev, dt, d = st.cur, st.dev, st.dt, st.d
    kw = dict(device=dev, dtype=dt)
    out = torch.empty(act.size, d, **kw)
    group = max(1, st.query_rows // num_eval)
    for s in range(0, act.size, group):
        ids = act[s : s + group]
        gens = [st.gens[i] for i in ids]
        if st.norm == "2":
            noise = [torch.randn(num_eval, d, generator=g, **kw) for g in gens]
        else:
            noise = [torch.rand(num_eval, d, generator=g, **kw) * 2 - 1 for g in gens]
        rv = torch.stack(noise)  # [g, n, d]
        rv = rv / rv.norm(dim=2, keepdim=True)
        base = cur[torch.as_tensor(ids, device=dev)][:, None, :]
        dl = torch.as_tensor(st.delta[ids], dtype=dt, device=dev)[:, None, None]
        evals = (base + dl * rv).clamp(st.lo, st.hi)
        rv = (evals - base) / dl
        ok = st.ask(evals.reshape(-1, d), np.repeat(ids, num_eval)).reshape(len(ids), num_eval)
        fval = torch.as_tensor(2.0 * ok - 1.0, dtype=dt, device=dev)  # [g, n]
        mean = fval.mean(1, keepdim=True)
        all_pos, all_neg = (mean == 1.0).squeeze(1), (mean == -1.0).squeeze(1)
        centred = torch.where(
            (all_pos | all_neg)[:, None], torch.where(all_pos[:, None], 1.0, -1.0), fval - mean
        )
        grad = (centred[:, :, None] * rv).mean(1)
        if st.norm == "2":
            out[s : s + len(ids)] = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-30)
        else:
            out[s : s + len(ids)] = grad.sign()
    return out


def _geometric_step(st: _State, act: np.ndarray, update: Tensor, t: int) -> None:
    """Step st.cur[act] [A, d] along update [A, d]; eps halved until adversarial (ART)."""
    eps = 2.0 * st.dist(act, st.norm) / math.sqrt(t + 1)
    pos = np.arange(act.size)
    for _ in range(MAX_HALVINGS):
        allowed = st.gate(act[pos], 1)
        pos = pos[np.isin(act[pos], allowed)]
        if pos.size == 0:
            break
        eps[pos] /= 2.0
        e = torch.as_tensor(eps[pos], dtype=st.dt, device=st.dev)[:, None]
        pot = (st.cur[st.ix(act[pos])] + e * update[st.ix(pos)]).clamp(st.lo, st.hi)
        ok = st.ask(pot, act[pos])
        st.cur[st.ix(act[pos[ok]])] = pot[st.ix(ok)]
        pos = pos[~ok]
    st.iterations[act[~st.done[act]]] += 1  # a step-size search without success keeps x_t


def _result(st: _State) -> HSJResult:
    """Final HSJResult: x_adv [N, *], distances [N] (box bound where failed), checkpoints."""
    failed = ~st.has_adv
    st.status[failed] = FAILED
    x_adv = torch.where(torch.as_tensor(failed, device=st.dev)[:, None], st.x, st.cur)
    bound = box_bound(st.x, st.lo, st.hi)
    res = HSJResult(
        x_adv=x_adv.reshape(len(st.x), *st.shape),
        distances=_with_failures(lp_distances(st.x, x_adv), bound, failed),
        status=st.status,
        queries=st.q.copy(),
        iterations=st.iterations,
        exhausted=st.exhausted.copy(),
    )
    for b in st.ckpts:
        pts, has = _checkpoint(st, b)
        res.at_budget[b] = _with_failures(lp_distances(st.x, pts), bound, ~has)
        res.failed_at_budget[b] = ~has
    return res


def _checkpoint(st: _State, b: int) -> tuple[Tensor, np.ndarray]:
    """The state after at most b queries: points [N, d] (x where none) and has_adv [N]."""
    pts, has = st.cur.clone(), st.has_adv.copy()
    snap = st.snapped[b]
    if snap.any():
        ts = st.ix(np.flatnonzero(snap))
        pts[ts] = st.snap_x[b][ts]
        has[snap] = st.snap_has[b][snap]
    return torch.where(torch.as_tensor(~has, device=st.dev)[:, None], st.x, pts), has


def _with_failures(dist: dict[str, Tensor], bound: dict[str, Tensor], failed: np.ndarray):
    """Per-norm distances [N] with the box bound where failed [N]."""
    f = torch.as_tensor(failed)
    return {k: torch.where(f, bound[k], v) for k, v in dist.items()}


__all__ = [
    "ATTACK_NORMS",
    "FAILED",
    "MISCLASSIFIED",
    "NORMS",
    "SUCCESS",
    "HSJResult",
    "box_bound",
    "hopskipjump",
    "lp_distances",
    "min_queries",
    "parse_norm",
    "sample_seeds",
]

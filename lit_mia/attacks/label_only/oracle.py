"""The label-only threat model in code: a target answers with its top-1 label and nothing else.

Li & Zhang CCS'21 §2.2 (Table 1): a decision-based adversary sees only the final decision
`argmax_k F(x)_k` of the target. Every label-only attack in this package receives a
`LabelOracle` (or any callable with its signature), never the model or a Predictor, so no code
path of an attack can read logits or probabilities.

`LabelOracle(model, n_owners, budget)` answers a batch `x [M, C, H, W]` with int64 labels `[M]`
(on the CPU). Each row is charged to an *owner* (the candidate sample the query is made for,
`owners [M]` int64 in [0, n_owners)), and `budget` caps the queries per owner: a call that would
push any owner past it raises `BudgetExceeded` before the model runs. Attacks plan their queries
so that this never happens; the cap is the guarantee that a reported "budget" is real.
Forward passes run in eval mode under `torch.inference_mode`, in chunks of `batch_size` rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from lit_mia.perturb.pgd import eval_mode


class BudgetExceeded(RuntimeError):
    """A query would exceed an owner's per-sample query budget."""


def _labeler(model: nn.Module, batch_size: int) -> Callable[[Tensor], Tensor]:
    """x -> argmax labels (CPU int64); the only reference to `model` lives in this closure."""
    device = next(model.parameters()).device

    def label(x: Tensor) -> Tensor:
        out = []
        with eval_mode(model), torch.inference_mode():  # ~3% faster than no_grad on CPU
            for i in range(0, len(x), batch_size):
                chunk = x[i : i + batch_size].to(device, non_blocking=True)
                out.append(model(chunk).argmax(1).to("cpu", torch.int64))
        # a normal tensor again (inference tensors cannot serve as training targets)
        return torch.cat(out).clone() if out else torch.empty(0, dtype=torch.int64)

    return label


class LabelOracle:
    """Label-only access to a classifier with per-owner query counting and budgets.

    `oracle(x, owners)` -> int64 labels [M]. `owners` may be omitted when `x` has exactly
    `n_owners` rows (one query per owner, in order). `queries` is a copy of the per-owner counts,
    `total` the number of rows answered. There is deliberately no attribute holding the model,
    its logits or probabilities.
    """

    __slots__ = ("_budget", "_counts", "_label", "_total")

    def __init__(
        self, model: nn.Module, n_owners: int, budget: int | None = None, batch_size: int = 1024
    ) -> None:
        if n_owners < 0:
            raise ValueError(f"n_owners must be >= 0, got {n_owners}")
        if budget is not None and budget < 0:
            raise ValueError(f"budget must be >= 0 or None, got {budget}")
        self._label = _labeler(model, max(1, int(batch_size)))
        self._counts = np.zeros(int(n_owners), dtype=np.int64)
        self._budget = None if budget is None else int(budget)
        self._total = 0

    @property
    def n_owners(self) -> int:
        return int(self._counts.size)

    @property
    def budget(self) -> int | None:
        return self._budget

    @property
    def queries(self) -> np.ndarray:
        """Queries charged to each owner so far (a copy)."""
        return self._counts.copy()

    @property
    def total(self) -> int:
        return self._total

    def remaining(self) -> np.ndarray:
        """Queries each owner may still make (int64; a large number when unbudgeted)."""
        if self._budget is None:
            return np.full(self._counts.size, np.iinfo(np.int64).max // 2, dtype=np.int64)
        return self._budget - self._counts

    def __call__(self, x: Tensor, owners: Tensor | np.ndarray | None = None) -> Tensor:
        if owners is None:
            if len(x) != self._counts.size:
                raise ValueError(
                    f"owners omitted: x needs one row per owner ({self._counts.size}), got {len(x)}"
                )
            own = np.arange(len(x))
        else:
            own = np.asarray(owners.cpu() if isinstance(owners, Tensor) else owners)
            own = own.astype(np.int64).reshape(-1)
            if own.size != len(x):
                raise ValueError(f"owners has {own.size} entries for {len(x)} rows")
            if own.size and (own.min() < 0 or own.max() >= self._counts.size):
                raise ValueError(f"owners outside [0, {self._counts.size})")
        add = np.bincount(own, minlength=self._counts.size)
        if self._budget is not None:
            over = np.flatnonzero(self._counts + add > self._budget)
            if over.size:
                i = int(over[0])
                raise BudgetExceeded(
                    f"owner {i} would use {int(self._counts[i] + add[i])} queries, budget "
                    f"{self._budget} ({over.size} owner(s) over)"
                )
        labels = self._label(x)
        self._counts += add
        self._total += int(own.size)
        return labels

    def __repr__(self) -> str:
        return f"LabelOracle(n_owners={self.n_owners}, budget={self._budget}, total={self._total})"


__all__ = ["BudgetExceeded", "LabelOracle"]

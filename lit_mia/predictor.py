"""Predictions of a trained model on named sample sets, adversarial examples cached per setting.

Attacks and target metrics read the model only through a `Predictor`, so the untargeted PGD
examples of a set are computed once and shared: the I_A scores and `target/adv_*_acc` at the
same eps use the same x_adv. Everything is batched (`batch_size`) and returned on the CPU.
Shapes: x [N,C,H,W] in [0,1], y [N] int64, logits [N,K].
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lit_mia.perturb.pgd import batched, pgd


class Predictor:
    """A model in eval mode answering for the sets it was given (name -> (x, y))."""

    def __init__(
        self,
        model: nn.Module,
        sets: dict[str, tuple[Tensor, Tensor]],
        batch_size: int = 500,
        device: torch.device | str | None = None,
    ) -> None:
        self.device = torch.device(device) if device else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.sets = sets
        self.batch_size = batch_size
        self._logits: dict[str, Tensor] = {}
        self._adv: dict[tuple, Tensor] = {}

    def labels(self, name: str) -> Tensor:
        return self.sets[name][1]

    @torch.no_grad()
    def _predict(self, x: Tensor) -> Tensor:
        out = [
            self.model(x[i : i + self.batch_size].to(self.device)).cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0)

    def logits(self, name: str) -> Tensor:
        """[N,K] logits on the benign inputs of set `name`."""
        if name not in self._logits:
            self._logits[name] = self._predict(self.sets[name][0])
        return self._logits[name]

    def adv_inputs(self, name: str, **pgd_args) -> Tensor:
        """Untargeted L_inf PGD examples of set `name` (cached per PGD setting)."""
        key = (name, *sorted(pgd_args.items()))
        if key not in self._adv:
            x, y = self.sets[name]
            if pgd_args.get("eps", 0) == 0 or pgd_args.get("steps", 0) == 0:
                self._adv[key] = x
            else:
                x_adv = batched(
                    pgd, x, y, self.batch_size, device=self.device, model=self.model, **pgd_args
                )
                self._adv[key] = x_adv.cpu()
        return self._adv[key]

    def adv_logits(self, name: str, **pgd_args) -> Tensor:
        """[N,K] logits on the PGD examples of set `name`."""
        key = ("logits", name, *sorted(pgd_args.items()))
        if key not in self._adv:
            self._adv[key] = self._predict(self.adv_inputs(name, **pgd_args))
        return self._adv[key]

    def accuracy(self, name: str, **pgd_args) -> float:
        """Accuracy on set `name`, benign if no PGD arguments are given."""
        logits = self.adv_logits(name, **pgd_args) if pgd_args else self.logits(name)
        return float((logits.argmax(1) == self.labels(name)).float().mean())

    @torch.no_grad()
    def worst_case_logits(self, name: str, eps: float) -> Tensor:
        """[N,K] worst-case logits of set `name` over the eps-ball under the target's own
        verifier (`worst_case_logits` of a verifiable target module), cached per eps."""
        key = ("worst", name, float(eps))
        if key not in self._adv:
            x, y = self.sets[name]
            out = [
                self.model.worst_case_logits(
                    x[i : i + self.batch_size].to(self.device),
                    y[i : i + self.batch_size].to(self.device),
                    eps,
                ).cpu()
                for i in range(0, len(x), self.batch_size)
            ]
            self._adv[key] = torch.cat(out)
        return self._adv[key]

    @torch.no_grad()
    def verified_accuracy(self, name: str, eps: float) -> float:
        """Fraction of set `name` whose worst-case margin under the target's own verifier is
        positive at `eps` (IBP intervals, or convex_adversarial's dual bound): `verified_mask`
        of a verifiable target module."""
        x, y = self.sets[name]
        ok = [
            self.model.verified_mask(
                x[i : i + self.batch_size].to(self.device),
                y[i : i + self.batch_size].to(self.device),
                eps,
            ).cpu()
            for i in range(0, len(x), self.batch_size)
        ]
        return float(torch.cat(ok).float().mean()) if ok else 0.0

"""What `lit_mia.audit` returns: the metric table and the per-sample scores of one audit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lit_mia.attacks.base import AttackResult
from lit_mia.metrics import keys

COLUMNS = (
    ("auc", "auc"),
    ("auc CI", "auc_ci"),
    ("TPR@1%FPR", "tpr_at_fpr_0.01"),
    ("TPR@0.1%FPR", "tpr_at_fpr_0.001"),
    ("acc (oracle)", "acc_best"),
    ("acc (calibrated)", "acc_calibrated"),
)


@dataclass
class AuditResult:
    """One audit: `metrics` (every logged scalar, `attack/<name>/<key>`, `target/...`),
    `attacks` (name -> AttackResult), the MLflow `run_id` in `tracking_uri`, and
    `n_members` (size of the member set; scores index members and non-members separately)."""

    metrics: dict[str, float]
    attacks: dict[str, AttackResult]
    run_id: str | None
    tracking_uri: str
    n_members: int
    names: list[str] = field(default_factory=list)

    def metric(self, attack: str, key: str) -> float:
        """`attack/<attack>/<key>`, e.g. metric("ib", "auc_ci_low")."""
        return self.metrics[keys.attack(attack, key)]

    @property
    def scores(self) -> dict[str, dict[str, np.ndarray]]:
        """attack -> {"score", "is_member", "index", "loss"?}: per evaluated sample, members
        first; `index` is the sample's position in `members` or in `nonmembers`."""
        out = {}
        for name, res in self.attacks.items():
            if res.scores is None:
                continue
            member = np.asarray(res.is_member).astype(int)
            d = {"score": np.asarray(res.scores, dtype=float), "is_member": member}
            if res.index is not None:
                idx = np.asarray(res.index, dtype=np.int64)
                d["index"] = np.where(member == 1, idx, idx - self.n_members)
            if res.losses is not None:
                d["loss"] = np.asarray(res.losses, dtype=float)
            out[name] = d
        return out

    def rows(self) -> list[dict[str, float | str]]:
        """One dict per attack with the table's columns (missing metrics left out)."""
        out = []
        for name in self.names or list(self.attacks):
            m = self.attacks[name].metrics
            row: dict[str, float | str] = {"attack": name}
            for _, key in COLUMNS:
                if key == "auc_ci" and "auc_ci_low" in m:
                    row[key] = f"[{m['auc_ci_low']:.3f}, {m['auc_ci_high']:.3f}]"
                elif key in m:
                    row[key] = m[key]
            out.append(row)
        return out

    def table(self) -> str:
        """Markdown table: one row per attack (AUC with its bootstrap CI, TPR at low FPR,
        oracle and calibrated balanced accuracy), then the model's train/test accuracy."""
        head = "| attack | " + " | ".join(c for c, _ in COLUMNS) + " |"
        lines = [head, "|---" * (len(COLUMNS) + 1) + "|"]
        for row in self.rows():
            vals = [row.get(k, "-") for _, k in COLUMNS]
            cells = [v if isinstance(v, str) else f"{v:.3f}" for v in vals]
            lines.append(f"| {row['attack']} | " + " | ".join(cells) + " |")
        acc = [
            f"{k.split('/')[1]} {self.metrics[k]:.3f}"
            for k in ("target/train_acc", "target/test_acc")
            if k in self.metrics
        ]
        if acc:
            lines.append(f"\nmodel accuracy on members / non-members: {', '.join(acc)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.table()}\nMLflow run {self.run_id} in {self.tracking_uri}"


__all__ = ["AuditResult"]

"""Per-class inference attacks of CCS'19 Table 7 (Song, Shokri, Mittal §3.3.1, §5.2.5).

Threat model: black-box prediction vectors F(x) plus the true label y; for the adversarial
features also white-box input gradients and the robust regime's L_inf budget (attack.eps,
Kerckhoffs, as I_A). Following Shokri et al. S&P'17, the attacker gets labelled data of the
target: for every class c, `attack.infer.n_train_per_class` members and as many non-members of
class c train a class-c attack (CCS'19: 500 + 500 on CIFAR-10), which is tested on the rest of
that class's members and non-members, balanced (the first n of each, the split is random).
The target's full member / non-member sets are used (ctx.split), not the `attack.n_eval`
evaluation prefix; test scores pooled over the classes give the metrics.

- `model_infer`: an InferenceClassifier (MLP 200-20-2, classifier.py) per class on features
  benign F(x) | untargeted F(x_adv) (the I_A example) | targeted: the k-1 vectors F(x'_t) of
  targeted PGD towards every wrong class t, concatenated in ascending t (§5.2.5 uses only these;
  `include_benign` appends F(x)). Score = member log-odds, `acc` = its own decision (p > 0.5).
- `confidence_infer`: per-class thresholds on F(.)_y (the paper's "confidence-infer (benign /
  untargeted)"), each chosen on the class's training part (best balanced accuracy,
  metrics.class_thresholds) and applied to its test part -> `acc`. `targeted` is skipped: "the
  confidence thresholding inference strategy does not apply for targeted adversarial examples"
  (§3.3.1).

`attack.infer.features` lists the kinds to compare in one run: the first (for confidence_infer
the first of benign/untargeted) is logged unprefixed, every kind as `<kind>/<metric>`, e.g.
`attack/model_infer/targeted/acc`; also `acc_class_<c>` per class and a per-class table
(`infer/<attack>_per_class.md`). `acc_best` etc. are metrics.attack_metrics' oracle-threshold
numbers over the pooled test scores; `acc` is the attack's own decision accuracy.
Adversarial features use the attack-time PGD (perturb/pgd.py pgd_args: 20 steps of
2.5*eps/20, no random start), targeted ones too (perturb/targeted.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from omegaconf import DictConfig

from lit_mia import metrics, training
from lit_mia.attacks.base import AttackResult
from lit_mia.attacks.classifier import decision_summary, fit_classifier, member_log_odds
from lit_mia.attacks.confidence import confidence_and_loss
from lit_mia.attacks.context import AttackContext
from lit_mia.attacks.settings import InferSettings  # noqa: F401 (re-export)
from lit_mia.errors import ConfigError, unknown_name
from lit_mia.perturb.pgd import pgd_args
from lit_mia.perturb.targeted import targeted_logits
from lit_mia.predictor import Predictor

KINDS = ("benign", "untargeted", "targeted")
CONFIDENCE_KINDS = ("benign", "untargeted")
OFFLINE_DATASETS = ("mnist5k", "digits")
"""Data sets loaded in memory and cached per process: check() verifies the per-class counts
for them before anything trains; for the others the attack verifies them when it runs."""


# ---------------------------------------------------------------- per-class split (pure)
@dataclass(frozen=True)
class ClassSplit:
    """Positions into the member / non-member index arrays, per class."""

    classes: list[int]
    train_in: dict[int, np.ndarray] = field(default_factory=dict)
    train_out: dict[int, np.ndarray] = field(default_factory=dict)
    test_in: dict[int, np.ndarray] = field(default_factory=dict)
    test_out: dict[int, np.ndarray] = field(default_factory=dict)


def class_split(
    member_labels: np.ndarray, nonmember_labels: np.ndarray, n_train: int, n_classes: int
) -> ClassSplit:
    """Per class c: the first n_train members / non-members of c (in split order, which is
    random) train, the next min(#members_c, #non-members_c) - n_train of each test.

    ConfigError naming attack.infer.n_train_per_class, the class and its counts when a class
    has no more than n_train members or non-members (nothing would be left to test)."""
    ml, nl = np.asarray(member_labels), np.asarray(nonmember_labels)
    out = ClassSplit(classes=list(range(n_classes)))
    for c in range(n_classes):
        mi, ni = np.flatnonzero(ml == c), np.flatnonzero(nl == c)
        if min(mi.size, ni.size) <= n_train:
            raise ConfigError(
                f"attack.infer.n_train_per_class={n_train} needs more than {n_train} members "
                f"and {n_train} non-members of every class (the rest test the attack); class "
                f"{c} has {mi.size} members and {ni.size} non-members (raise data.n_members / "
                f"data.n_nonmembers or lower attack.infer.n_train_per_class)"
            )
        n_test = min(mi.size, ni.size) - n_train
        out.train_in[c], out.train_out[c] = mi[:n_train], ni[:n_train]
        out.test_in[c] = mi[n_train : n_train + n_test]
        out.test_out[c] = ni[n_train : n_train + n_test]
    return out


def class_threshold_decisions(
    train_scores: np.ndarray,
    train_member: np.ndarray,
    train_labels: np.ndarray,
    test_scores: np.ndarray,
    test_labels: np.ndarray,
) -> tuple[dict[int, float], np.ndarray]:
    """confidence_infer's rule: per class, the threshold with the best balanced accuracy on
    that class's training scores (metrics.class_thresholds; ties -> the largest), applied to
    its test scores (member iff score >= threshold). Returns (thresholds, decisions [N_test]).
    A test class without a training threshold is a ConfigError (class_split prevents it)."""
    thr = metrics.class_thresholds(train_scores, train_member, train_labels)
    missing = sorted(set(np.unique(test_labels).tolist()) - set(thr))
    if missing:
        raise ConfigError(f"no training members and non-members for classes {missing}")
    per_sample = np.array([thr[int(c)] for c in test_labels], dtype=np.float64)
    return thr, np.asarray(test_scores) >= per_sample


# ---------------------------------------------------------------- features of one target
class InferData:
    """The selected rows (every class's train + test members and non-members) of one target,
    their labels and, lazily, their features per kind. Shared by model_infer and
    confidence_infer of one AttackContext (`infer_data`), so PGD runs once per kind."""

    def __init__(self, ctx: AttackContext) -> None:
        cfg, split, bundle = ctx.cfg, ctx.split, ctx.bundle
        self.cfg = cfg
        self.n_classes = bundle.n_classes
        members, nonmembers = np.asarray(split.members), np.asarray(split.nonmembers)
        y = bundle.y.numpy()
        cs = class_split(
            y[members], y[nonmembers], int(cfg.attack.infer.n_train_per_class), self.n_classes
        )
        idx, member, train = [], [], []
        for c in cs.classes:
            for pos, pool, is_in, is_train in (
                (cs.train_in[c], members, 1, True),
                (cs.train_out[c], nonmembers, 0, True),
                (cs.test_in[c], members, 1, False),
                (cs.test_out[c], nonmembers, 0, False),
            ):
                idx.append(pool[pos])
                member.append(np.full(pos.size, is_in))
                train.append(np.full(pos.size, is_train))
        self.idx = np.concatenate(idx)  # [R] dataset indices
        self.member = np.concatenate(member)  # [R] 1 = member
        self.train = np.concatenate(train)  # [R] True = attack training row
        self.y = y[self.idx]  # [R] true labels
        x, yt = training.subset(bundle, self.idx)
        self.pred = Predictor(ctx.target, {"rows": (x, yt)}, cfg.attack.batch_size)
        self.pgd_args = pgd_args(cfg.attack)
        self._features: dict[str, np.ndarray] = {}

    def logits(self, kind: str) -> torch.Tensor:
        """[R, K] logits of the benign or untargeted-PGD inputs."""
        if kind == "benign":
            return self.pred.logits("rows")
        return self.pred.adv_logits("rows", **self.pgd_args)

    def features(self, kind: str) -> np.ndarray:
        """[R, D] prediction-vector features of `kind` (D = K, or (k-1)*K [+ K] targeted)."""
        if kind not in self._features:
            if kind == "targeted":
                x, y = self.pred.sets["rows"]
                z = targeted_logits(
                    self.pred.model,
                    x,
                    y,
                    self.n_classes,
                    batch_size=self.cfg.attack.batch_size,
                    device=self.pred.device,
                    **self.pgd_args,
                )
                f = torch.softmax(z.double(), dim=2).reshape(len(y), -1)
                if self.cfg.attack.infer.include_benign:
                    f = torch.cat([f, torch.softmax(self.logits("benign").double(), 1)], 1)
            else:
                f = torch.softmax(self.logits(kind).double(), dim=1)
            self._features[kind] = f.numpy()
        return self._features[kind]

    def confidence(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """([R] F(.)_y, [R] CE loss) of the benign or untargeted inputs."""
        return confidence_and_loss(self.logits(kind), self.pred.labels("rows"))


def infer_data(ctx: AttackContext) -> InferData:
    """The InferData of ctx (built on first use, kept in `ctx.shared`, dropped with ctx)."""
    if "infer" not in ctx.shared:
        ctx.shared["infer"] = InferData(ctx)
    return ctx.shared["infer"]


# ---------------------------------------------------------------- the two attacks
def _per_class_table(title: str, n_test: dict, cols: dict[str, dict]) -> str:
    """Markdown: one row per class (key "all" = pooled), one column per feature kind."""
    head = "| class | n_test (each) | " + " | ".join(cols) + " |"
    rows = [f"# {title}", "", head, "|---" * (len(cols) + 2) + "|"]
    for c in n_test:
        vals = " | ".join(f"{cols[k][c]:.4f}" for k in cols)
        rows.append(f"| {c} | {n_test[c]} | {vals} |")
    return "\n".join(rows) + "\n"


def _collect(name: str, d: InferData, kinds: list[str], score_fn) -> AttackResult:
    """Run `score_fn(kind) -> (test scores, test decisions)` per kind, log them as the module
    docstring says; scores/is_member/index of the result are the first kind's test rows."""
    cfg, test = d.cfg, ~d.train
    member, labels = d.member[test], d.y[test]
    _, benign_loss = d.confidence("benign")
    out: dict[str, float] = {}
    cols: dict[str, dict] = {}
    n_test = {c: int((labels == c).sum() // 2) for c in range(d.n_classes)}
    first = None
    for kind in kinds:
        scores, decisions = score_fn(kind)
        m = decision_summary(
            scores, decisions, member, cfg.attack, int(cfg.seed), losses=benign_loss[test]
        )
        m["n_train_per_class"] = float(cfg.attack.infer.n_train_per_class)
        m["n_test"] = float(member.size)
        cols[kind] = {}
        for c in range(d.n_classes):
            sel = labels == c
            acc_c = metrics.decision_metrics(decisions[sel], member[sel])["acc"]
            m[f"acc_class_{c}"] = cols[kind][c] = acc_c
        cols[kind]["all"] = m["acc"]
        out.update({f"{kind}/{k}": v for k, v in m.items()})
        if first is None:
            first = (m, scores)
            out.update(m)
    n_test["all"] = int(member.size // 2)
    table = _per_class_table(f"{name}: decision accuracy (balanced) per class", n_test, cols)
    return AttackResult(
        out,
        scores=first[1],
        is_member=member,
        losses=benign_loss[test],
        index=d.idx[test],
        texts={f"infer/{name}_per_class.md": table},
    )


def model_infer(ctx: AttackContext) -> AttackResult:
    """CCS'19 "model-infer (benign / untargeted / targeted)": one classifier per class."""
    d, s = infer_data(ctx), ctx.cfg.attack.infer
    test = ~d.train

    def score(kind: str) -> tuple[np.ndarray, np.ndarray]:
        f = d.features(kind)
        scores = np.empty(d.idx.size)
        for c in range(d.n_classes):
            tr, te = d.train & (d.y == c), test & (d.y == c)
            clf = fit_classifier(
                f[tr],
                d.member[tr],
                hidden=list(s.hidden),
                epochs=int(s.epochs),
                lr=float(s.lr),
                batch_size=int(s.batch_size),
                weight_decay=float(s.weight_decay),
                seed=int(ctx.cfg.seed) + c,
                accelerator=str(ctx.cfg.trainer.accelerator),
                deterministic=ctx.cfg.trainer.deterministic,
            )
            scores[te] = member_log_odds(clf, f[te])
        return scores[test], scores[test] > 0

    return _collect("model_infer", d, list(s.features), score)


def confidence_infer(ctx: AttackContext) -> AttackResult:
    """CCS'19 "confidence-infer (benign / untargeted)": per-class confidence thresholds."""
    d = infer_data(ctx)
    tr, te = d.train, ~d.train

    def score(kind: str) -> tuple[np.ndarray, np.ndarray]:
        conf, _ = d.confidence(kind)
        _, decisions = class_threshold_decisions(conf[tr], d.member[tr], d.y[tr], conf[te], d.y[te])
        return conf[te], decisions

    kinds = [k for k in ctx.cfg.attack.infer.features if k in CONFIDENCE_KINDS]
    return _collect("confidence_infer", d, kinds, score)


# ---------------------------------------------------------------- config checks
def _positive(cfg: DictConfig, key: str, value, minimum=1) -> None:
    if not value >= minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value!r}")


def check_infer_settings(cfg: DictConfig, confidence: bool = False) -> None:
    """Feature kinds, sizes and (for in-memory data sets) the per-class member counts."""
    s = cfg.attack.infer
    kinds = list(s.features)
    if not kinds:
        raise ConfigError(f"attack.infer.features must list at least one of {', '.join(KINDS)}")
    for k in kinds:
        if k not in KINDS:
            raise unknown_name("feature kind (key attack.infer.features)", k, KINDS)
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"attack.infer.features lists a kind twice: {kinds}")
    if confidence and not any(k in CONFIDENCE_KINDS for k in kinds):
        raise ConfigError(
            f"attack.infer.features must include benign or untargeted for confidence_infer "
            f"(targeted has no single confidence), got {kinds}"
        )
    _positive(cfg, "attack.infer.n_train_per_class", s.n_train_per_class)
    _positive(cfg, "attack.infer.epochs", s.epochs)
    _positive(cfg, "attack.infer.batch_size", s.batch_size)
    if not s.lr > 0:
        raise ConfigError(f"attack.infer.lr must be > 0, got {s.lr!r}")
    if not s.weight_decay >= 0:
        raise ConfigError(f"attack.infer.weight_decay must be >= 0, got {s.weight_decay!r}")
    if any(h < 1 for h in s.hidden):
        raise ConfigError(f"attack.infer.hidden sizes must be >= 1, got {list(s.hidden)}")
    if cfg.data.name in OFFLINE_DATASETS:
        bundle, split = training.build_data(cfg)
        y = bundle.y.numpy()
        class_split(
            y[split.members], y[split.nonmembers], int(s.n_train_per_class), bundle.n_classes
        )


def check_confidence_infer(cfg: DictConfig) -> None:
    """check_infer_settings for confidence-infer (benign and untargeted confidences only)."""
    check_infer_settings(cfg, confidence=True)


__all__ = [
    "InferData",
    "check_confidence_infer",
    "class_split",
    "class_threshold_decisions",
    "confidence_infer",
    "infer_data",
    "model_infer",
]

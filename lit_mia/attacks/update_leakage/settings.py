"""Settings of the update-leakage experiments (top-level key `updates.`): Salem et al.
USENIX Security'20 (Updates-Leak); defaults from docs/reference/paper-defaults.md#update-leakage.

Plain dataclasses (no lit_mia imports) so lit_mia/config/ can embed them in the schema.

Data layout (pools.py): one permutation of the data set from `seed` is cut into consecutive
blocks [shadow base | shadow update pool | target base | target update pool | probe]; the
sizes are base_size, shadow_pool, target_pool and n_probe. Paper sizes (MNIST: 10,000-image
base models, m_shadow 10,000, m_target 1,000) are scaled down to the 5,000 images of mnist5k.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REPRESENTATIONS = ("log_unit", "unit", "standardized")
"""updates.representation: what the decoders see of a delta (representation.py)."""
SSR_DECODERS = ("mlp", "autoencoder")
"""updates.ssr.decoder: A_SSR's decoder (single.py, autoencoder.py)."""


@dataclass
class LiSettings:
    """A_LI (§4.1, appendix C): encoder + FC(n_classes) + softmax, CE loss, Adam."""

    epochs: int = 50
    lr: float = 1e-3


@dataclass
class SsrSettings:
    """A_SSR (§4.2, appendix D Table 2). decoder "autoencoder": the paper's attack, an
    autoencoder trained on the adversary's shadow data, its decoder transferred behind encoder
    + FC(64 -> mu_AE) and fine-tuned with MSE, Adam (encoder: updates.hidden / dropout).
    decoder "mlp" (default, chosen by measurement: autoencoder.py): delta -> FC `hidden`
    (dropout `dropout`) -> pixels. The autoencoder is trained either way: its reconstruction
    of the true sample is the mse_ae_oracle baseline."""

    decoder: str = "mlp"  # mlp | autoencoder (autoencoder.py)
    hidden: list[int] = field(default_factory=lambda: [256, 256])  # decoder "mlp"
    dropout: float = 0.5  # decoder "mlp"
    ae_epochs: int = 100
    ae_lr: float = 3e-3
    # Appendix D puts dropout in the AE; on 2,400 mnist5k images dropout 0.2 on its 15-unit
    # layers kept the AE at the mean image (test MSE 0.063 vs 0.038 without, 100 epochs)
    ae_dropout: float = 0.0
    epochs: int = 150  # at most: the epoch is chosen on held-out shadow updates
    lr: float = 1e-3
    n_grid: int = 10  # fair random draws shown in the reconstruction grid


@dataclass
class LdeSettings:
    """A_LDE (§5, released code): MLP 1000-256-128-10 with dropout 0.5 and a softmax
    histogram output, KL(true || predicted), Adam 1e-3, 50 epochs."""

    hidden: list[int] = field(default_factory=lambda: [256, 128])
    dropout: float = 0.5
    epochs: int = 50
    lr: float = 1e-3
    k: int | None = 100  # update-set size of A_LDE (paper: 100); null: updates.k
    n_bars: int = 6  # update sets shown in the label-distribution bar chart


@dataclass
class MsrSettings:
    """A_MSR with CBM-GAN (§5, appendix E MNIST): generator FC 2048-2048-2048-784 (tanh) on
    (mu, z), discriminator FC 1024-512-256-1 (sigmoid), BN + LeakyReLU on hidden layers; loss
    adversarial + best_match_weight * the paper's best-match loss (squared L2, cbm_gan.py);
    updates_leak_multi.yaml holds the CPU-sized settings. Evaluation:
    n_eval_gen generated samples per update set, k-means (k = update-set size), Hungarian
    matching to the real set, mean MSE."""

    gen_hidden: list[int] = field(default_factory=lambda: [2048, 2048, 2048])
    disc_hidden: list[int] = field(default_factory=lambda: [1024, 512, 256])
    z_dim: int = 64
    n_gen: int = 30  # generated samples per update set in one training step
    n_eval_gen: int = 100  # generated samples per update set at evaluation (k-means input)
    sets_per_batch: int = 16
    best_match_weight: float = 1.0
    epochs: int = 10
    lr: float = 2e-4
    beta1: float = 0.5
    n_grid: int = 4  # update sets shown in the reconstruction grid


@dataclass
class AblationSettings:
    """`updates_leak_ablation` (ablation.py): A_LI and A_SSR quality vs the number of shadow
    updates, of shadow base models and of probes, one factor at a time around the defaults."""

    enabled: bool = False  # true: the experiment runs the ablation instead of `attacks`
    attacks: list[str] = field(default_factory=lambda: ["a_li", "a_ssr"])
    n_updates: list[int] = field(default_factory=lambda: [250, 1000, 2400])
    n_bases: list[int] = field(default_factory=lambda: [1, 5])
    n_probes: list[int] = field(default_factory=lambda: [10, 30, 100])


@dataclass
class UpdatesSettings:
    m_shadow: int = 2400  # shadow updated models = attack training sets (paper: 10,000)
    m_target: int = 500  # target updated models = attack test sets (paper: 1,000)
    k: int = 1  # update-set size (1: single-sample attacks; A_MSR; A_LDE unless lde.k)
    n_probe: int = 100  # probing set (paper: 100 -> delta of 100 * n_classes dims)
    base_size: int = 1000  # training set of each base model (paper MNIST: 10,000)
    base_epochs: int = 25  # paper MNIST: 25 (CIFAR-10: 50)
    base_batch_size: int = 64  # paper: 64
    # 2 * 1,000 base + 2,400 + 500 + 100 probes = all 5,000 images of mnist5k; k = 1 with
    # m_shadow = shadow_pool: every shadow update is a distinct image (pools.py)
    shadow_pool: int = 2400  # shadow update pool (update sets are drawn from it)
    target_pool: int = 500  # target update pool
    n_shadow_bases: int = 5  # shadow bases the shadow updates are spread over (update_farm.py)
    representation: str = "log_unit"  # log_unit | unit | standardized (representation.py)
    farm_dtype: str = "float64"  # float64 | float32: update + probe forward (update_deltas.py)
    label_dirichlet: float = 0.0  # >0: each update set's label mix ~ Dirichlet(alpha); 0: plain
    update_optimizer: str = "sgd"  # sgd | adam (released code: SGD lr 1e-3, momentum 0.9)
    update_lr: float = 1e-3
    update_momentum: float = 0.9
    update_batch_size: int = 64  # one epoch over the update set in batches of this size
    chunk: int = 64  # updated models per vectorised farm call
    probe_mode: str = (
        "delta"  # delta | loop | vmap: how updated models see the probes (update_deltas.py)
    )
    batch_size: int = 64  # attack-model training batch (update sets per batch)
    # Every attack model keeps the weights of the epoch with the lowest loss on held-out
    # shadow updates: those of the last shadow base model (n_shadow_bases >= 2: the held-out
    # updates come from a base model the decoder never saw, as the target's does) or a random
    # val_fraction of them (one base). Never the target side (context.fit_attack_model).
    early_stopping: bool = True
    val_fraction: float = 0.2
    dropout: float = 0.2  # encoder dropout (appendix B: dropout on both layers)
    hidden: list[int] = field(default_factory=lambda: [128, 64])  # encoder (appendix B)
    cache_dir: str = "mlruns/cache/updates"
    li: LiSettings = field(default_factory=LiSettings)
    ssr: SsrSettings = field(default_factory=SsrSettings)
    lde: LdeSettings = field(default_factory=LdeSettings)
    msr: MsrSettings = field(default_factory=MsrSettings)
    ablation: AblationSettings = field(default_factory=AblationSettings)


__all__ = [
    "AblationSettings",
    "LdeSettings",
    "LiSettings",
    "MsrSettings",
    "SsrSettings",
    "UpdatesSettings",
]

"""Config checks of the update-leakage attacks (the `check(cfg)` of their registry entries,
lit_mia/attacks/registry.py, before anything trains); lightweight on purpose: no torch models,
no data loading.

`AE_FOR_DATASET`: data sets with a known autoencoder for A_SSR (appendix D, Table 2; the MNIST
column is built, for every 1x28x28 set). What needs the data or the net is checked once both
exist, before any MLflow run (run_updates.prepare): the pools against the data set's size from
the data registry (models/update_pools.make_pools, plug-in data sets included) and the net
against BatchNorm (models/update_deltas.check_net, plug-in nets included).
"""

from __future__ import annotations

from lit_mia.attacks.update_leakage.settings import REPRESENTATIONS, SSR_DECODERS
from lit_mia.errors import ConfigError
from lit_mia.models.update_choices import FARM_DTYPES, PROBE_MODES, UPDATE_OPTIMIZERS

AE_FOR_DATASET = {"mnist5k": "mnist", "mnist": "mnist", "fashion_mnist": "mnist"}
SINGLE_SAMPLE = ("a_li", "a_ssr")


def _need(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


def check_updates(cfg, attack: str) -> None:
    """ConfigError (naming the key and the allowed range) for settings `attack` cannot use."""
    u = cfg.updates
    for key in ("m_target", "n_probe", "base_size", "base_epochs", "base_batch_size", "chunk"):
        _need(u[key] >= 1, f"updates.{key} must be >= 1, got {u[key]}")
    for key in ("shadow_pool", "target_pool", "update_batch_size", "batch_size"):
        _need(u[key] >= 1, f"updates.{key} must be >= 1, got {u[key]}")
    _need(u.m_shadow >= 1, f"updates.m_shadow must be >= 1, got {u.m_shadow}")
    _need(
        u.m_shadow >= u.batch_size,
        f"updates.m_shadow must be >= updates.batch_size ({u.batch_size}): the attack model "
        f"trains on m_shadow update sets, got {u.m_shadow}",
    )
    _need(u.n_shadow_bases >= 1, f"updates.n_shadow_bases must be >= 1, got {u.n_shadow_bases}")
    _need(
        u.m_shadow >= u.n_shadow_bases,
        f"updates.m_shadow must be >= updates.n_shadow_bases ({u.n_shadow_bases}), got "
        f"{u.m_shadow}",
    )
    _need(
        u.representation in REPRESENTATIONS,
        f"updates.representation must be one of {', '.join(REPRESENTATIONS)}, got "
        f"{u.representation!r}",
    )
    _need(
        u.farm_dtype in FARM_DTYPES,
        f"updates.farm_dtype must be one of {', '.join(FARM_DTYPES)}, got {u.farm_dtype!r}",
    )
    key = "updates.lde.k" if attack == "a_lde" and u.lde.k is not None else "updates.k"
    k = u.lde.k if key == "updates.lde.k" else u.k
    _need(k >= 1, f"{key} must be >= 1, got {k}")
    pool = min(int(u.shadow_pool), int(u.target_pool))
    _need(
        k <= pool,
        f"{key} must be <= the update pool size min(updates.shadow_pool, "
        f"updates.target_pool) = {pool}, got {k}",
    )
    _need(
        u.update_optimizer in UPDATE_OPTIMIZERS,
        f"updates.update_optimizer must be one of {', '.join(UPDATE_OPTIMIZERS)}, got "
        f"{u.update_optimizer!r}",
    )
    _need(
        u.probe_mode in PROBE_MODES,
        f"updates.probe_mode must be one of {', '.join(PROBE_MODES)}, got {u.probe_mode!r}",
    )
    _need(u.update_lr >= 0, f"updates.update_lr must be >= 0, got {u.update_lr}")
    _need(
        0 <= u.update_momentum < 1,
        f"updates.update_momentum must be in [0, 1), got {u.update_momentum}",
    )
    _need(0 <= u.dropout < 1, f"updates.dropout must be in [0, 1), got {u.dropout}")
    _need(u.label_dirichlet >= 0, f"updates.label_dirichlet must be >= 0, got {u.label_dirichlet}")
    _need(
        len(u.hidden) >= 1 and all(h >= 1 for h in u.hidden),
        f"updates.hidden must be a non-empty list of widths >= 1, got {list(u.hidden)}",
    )
    if u.ablation.enabled:
        a = u.ablation
        for name in ("n_updates", "n_bases", "n_probes"):
            _need(
                len(a[name]) >= 1 and all(v >= 1 for v in a[name]),
                f"updates.ablation.{name} must be a non-empty list of values >= 1, got "
                f"{list(a[name])}",
            )
        _need(
            max(a.n_probes) <= u.n_probe,
            f"updates.ablation.n_probes must be <= updates.n_probe ({u.n_probe}), got "
            f"{list(a.n_probes)}",
        )
        _need(
            set(a.attacks) <= set(SINGLE_SAMPLE) and len(a.attacks) >= 1,
            f"updates.ablation.attacks must be a non-empty subset of a_li, a_ssr, got "
            f"{list(a.attacks)}",
        )
    if attack in SINGLE_SAMPLE:
        _need(u.k == 1, f"updates.k must be 1 for the single-sample attack {attack}, got {u.k}")
    if attack == "a_ssr":
        _need(
            str(cfg.data.name) in AE_FOR_DATASET,
            f"data.name: a_ssr has no autoencoder (appendix D, Table 2) for "
            f"{cfg.data.name!r}; valid: {', '.join(sorted(AE_FOR_DATASET))}",
        )
    _need(
        0 < u.val_fraction < 1,
        f"updates.val_fraction must be in (0, 1), got {u.val_fraction}",
    )
    if attack == "a_ssr":
        s = u.ssr
        _need(
            0 <= s.ae_dropout < 1,
            f"updates.ssr.ae_dropout must be in [0, 1), got {s.ae_dropout}",
        )
        _need(
            s.decoder in SSR_DECODERS,
            f"updates.ssr.decoder must be one of {', '.join(SSR_DECODERS)}, got {s.decoder!r}",
        )
        _need(0 <= s.dropout < 1, f"updates.ssr.dropout must be in [0, 1), got {s.dropout}")
        _need(
            len(s.hidden) >= 1 and all(h >= 1 for h in s.hidden),
            f"updates.ssr.hidden must be a non-empty list of widths >= 1, got {list(s.hidden)}",
        )
    if attack == "a_lde":
        _need(u.lde.epochs >= 1, f"updates.lde.epochs must be >= 1, got {u.lde.epochs}")
    if attack == "a_msr":
        s = u.msr
        _need(
            s.sets_per_batch >= 1,
            f"updates.msr.sets_per_batch must be >= 1, got {s.sets_per_batch}",
        )
        _need(s.n_gen >= 1, f"updates.msr.n_gen must be >= 1, got {s.n_gen}")
        _need(
            s.n_eval_gen >= u.k,
            f"updates.msr.n_eval_gen must be >= updates.k ({u.k}) for k-means, got {s.n_eval_gen}",
        )
        _need(s.z_dim >= 1, f"updates.msr.z_dim must be >= 1, got {s.z_dim}")


__all__ = ["AE_FOR_DATASET", "check_updates"]

"""What attacks train: every model an attack needs besides the target.

    shadow_farm.py       many small models trained at once (torch.func vmap) or in a loop
    reference_models.py  LiRA / RMIA reference models: keep matrix, pool, cached states, logits
    cache.py             the content-keyed model cache (every field that determines a model)
    base_models.py       update leakage's base models (the target regime, updates.base_*)
    update_pools.py      disjoint index pools, update sets without replacement
    update_choices.py    the farm's optimisers, probe modes, dtypes (no torch)
    update_deltas.py     updated models of one base model and their probe deltas
    delta_forward.py     the probe forward in first order (probe_mode "delta")
    update_farm.py       both sides' farms (shadow bases, one target base), cached, with facts

Nothing here imports an attack: attacks pass their context in (duck-typed).
"""

"""Models that attacks train: LiRA's and RMIA's shadow farm and reference models
(shadow_farm.py, reference_models.py), the on-disk model cache (cache.py), and the base models,
index pools and updated-model farm of update leakage (base_models.py, update_pools.py,
update_farm.py, update_deltas.py, delta_forward.py).

A regular package, so that setuptools' `packages.find` ships it and the API reference finds it.
"""

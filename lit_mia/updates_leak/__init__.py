"""Update leakage (Salem et al. USENIX Security'20, "Updates-Leak"): issue 6.

Nothing in this package imports lit_mia.attacks (its registry entries live in
lit_mia/attacks/updates.py), so either side can be imported first; only pipeline.py imports
lit_mia.run / lit_mia.tracking.

    settings.py    UpdatesSettings (config key `updates.`)
    validation.py  config checks behind the registry entries' check(cfg)
    pools.py       disjoint index pools from a seeded permutation, update-set sampling
    farm.py        updated-model farm (torch.func fast path, naive reference), cached
    encoder.py     the shared delta encoder (appendix B)
    decoders.py    A_LI and A_LDE LightningModules
    autoencoder.py the Table 2 autoencoder and A_SSR
    cbm_gan.py     CBM-GAN (A_MSR), manual optimisation
    evaluation.py  best-match loss, k-means + Hungarian MSE, KL: pure functions
    runners.py     each attack with its baselines on a generated farm
    plots.py       reconstruction grids, label-distribution bars
    pipeline.py    run_updates_leak: one MLflow run per experiment
"""

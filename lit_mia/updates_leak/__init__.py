"""Update leakage (Salem et al. USENIX Security'20, "Updates-Leak"): issue 6.

The four attacks are entries of the one attack registry (lit_mia/attacks/registry.py collects
`UPDATE_ATTACKS` of attacks.py; kind `update_leakage`). Only pipeline.py imports the registry
(which never imports pipeline.py); nothing here imports lit_mia.run.

    settings.py    UpdatesSettings (config key `updates.`)
    validation.py  config checks behind the registry entries' check(cfg)
    attacks.py     UPDATE_ATTACKS: the registry entries (run, check, description, settings)
    pools.py       disjoint index pools from a seeded permutation, update-set sampling
    farm.py        updated-model farm (torch.func fast path, naive reference), cached
    encoder.py     the shared delta encoder (appendix B)
    decoders.py    A_LI and A_LDE LightningModules
    autoencoder.py the Table 2 autoencoder and A_SSR
    cbm_gan.py     CBM-GAN (A_MSR), manual optimisation
    evaluation.py  best-match loss, k-means + Hungarian MSE, KL: pure functions
    runners.py     UpdatesContext; each attack with its baselines on a generated farm ->
                   AttackResult
    plots.py       reconstruction grids, label-distribution bars
    pipeline.py    run_updates_leak: one MLflow run per experiment
"""

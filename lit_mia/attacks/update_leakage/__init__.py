"""Update leakage (Salem et al. USENIX Security'20, "Updates-Leak"): the attacks.

The four attacks are entries of the one attack registry (lit_mia/attacks/registry.py, kind
`update_leakage`: run = single.py / multi.py, check = validation.py, settings = settings.py, as
lazy references), evaluated by the same loop as every other attack (lit_mia/evaluation.py,
called from lit_mia/run_updates.py). What they attack, the update farm (base models, pools,
updated models and their deltas), is trained in lit_mia/models/.

    settings.py        UpdatesSettings (config key `updates.`), REPRESENTATIONS, SSR_DECODERS
    validation.py      config checks behind the registry entries' check(cfg)
    representation.py  what the decoders see of a delta (unit log-posterior difference + norm)
    encoder.py         the shared encoder (appendix B)
    decoders.py        A_LI and A_LDE LightningModules
    autoencoder.py     the Table 2 autoencoder and A_SSR
    cbm_gan.py         CBM-GAN (A_MSR), manual optimisation
    match_metrics.py   best-match loss, k-means + Hungarian MSE, KL: pure functions
    context.py         UpdatesContext (settings, data, pools, one farm per set size)
    single.py          A_LI, A_SSR with their baselines -> AttackResult
    multi.py           A_LDE, A_MSR with their baselines -> AttackResult
    ablation.py        quality vs shadow updates, shadow bases, probes (updates_leak_ablation)
    plots.py           reconstruction grids, label-distribution bars, curves
"""

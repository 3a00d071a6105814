"""Update leakage (Salem et al. USENIX Security'20, "Updates-Leak"): issues 6 and 11.

The four attacks are entries of the one attack registry (lit_mia/attacks/registry.py, kind
`update_leakage`: run = single.py / multi.py, check = validation.py, settings = settings.py, as
lazy references). Only pipeline.py imports the registry; nothing here imports lit_mia.run.

    settings.py        UpdatesSettings (config key `updates.`)
    validation.py      config checks behind the registry entries' check(cfg)
    pools.py           disjoint index pools, update sets without replacement
    farm.py            updated models of one base model (torch.func fast path, float64,
                       naive reference)
    sides.py           both sides: several shadow base models, one target base, cached farms
    representation.py  what the decoders see of a delta (unit log-posterior difference + norm)
    encoder.py         the shared encoder (appendix B)
    decoders.py        A_LI and A_LDE LightningModules
    autoencoder.py     the Table 2 autoencoder and A_SSR
    cbm_gan.py         CBM-GAN (A_MSR), manual optimisation
    evaluation.py      best-match loss, k-means + Hungarian MSE, KL: pure functions
    context.py         UpdatesContext (settings, data, pools, one farm per set size)
    single.py          A_LI, A_SSR with their baselines -> AttackResult
    multi.py           A_LDE, A_MSR with their baselines -> AttackResult
    ablation.py        quality vs shadow updates, shadow bases, probes (updates_leak_ablation)
    plots.py           reconstruction grids, label-distribution bars, curves
    pipeline.py        run_updates_leak: one MLflow run per experiment
"""

"""Label-only membership inference (Li & Zhang CCS'21; Choquette-Choo et al. ICML 2021).

The adversary sees the target's top-1 label only: every attack here talks to the target through
a `LabelOracle` (oracle.py), which answers with int64 labels, counts queries per candidate and
enforces per-candidate budgets; no attack reads logits or probabilities of the target.

- baseline      (baseline.py)      Yeom: member iff correctly classified
- transfer      (transfer.py)      shadow model on target-relabelled data, score -CE (Alg. 1)
- boundary      (boundary.py)      HopSkipJump distance (Alg. 2), L0/L1/L2/L_inf, AUC vs
                                   budget, Algorithm 3 thresholds (random_thresholds.py)
- augmentation  (augmentation.py)  robustness of the label to shifts / flips / noise
- cert_radius   (certify.py)       randomized-smoothing certified radius, ACR (App. A.2)

Settings of every section are in settings.py (no torch); the registry entries in
lit_mia/attacks/registry.py. Import from the modules: this package imports nothing.
"""

"""Pure perturbation functions on (model, x, y): untargeted and targeted PGD (pgd.py,
targeted.py), Sinha's ascent (distributional.py), batched HopSkipJump (hopskipjump.py), and the
attack-time PGD settings (settings.py). Import from the modules: this package imports nothing,
so the settings load without torch."""

"""Auditing models trained outside lit_mia: `lit_mia.audit(...)` (api.py, inputs.py,
result.py) for a model object and its data, and `lit-mia audit CHECKPOINT` (checkpoint.py) for
a saved state dict of a registered net against a registered dataset's indices."""

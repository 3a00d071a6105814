"""lit_mia: membership inference and update leakage against robustly trained models.

`lit_mia.audit(model, members, nonmembers, ...)` audits a model trained elsewhere
(auditing/api.py); it is imported on first use, so `import lit_mia` stays light.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "audit":
        from lit_mia.auditing.api import audit

        return audit
    if name == "AuditResult":
        from lit_mia.auditing.result import AuditResult

        return AuditResult
    raise AttributeError(f"module 'lit_mia' has no attribute {name!r}")


__all__ = ["AuditResult", "__version__", "audit"]

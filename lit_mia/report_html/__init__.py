"""`lit-mia report TARGET [key=value ...]`: one self-contained HTML study report.

    cfg = config.load(TARGET if it names conf/experiment/ else "single", overrides)
    store = tracking.Store(cfg.tracking.uri)            # read-only, through tracking.py
    top = collect.resolve(store, TARGET, ...)           # experiment | run id | sweep
    study = collect.collect(store, top)                 # targets, attacks, scores, plots
    html = render.page(study, manifest(study))          # summary, per attack, sweep, manifest
    -> written to OUTPUT (default: reports/<run name>-<run id>.html beside the SQLite store,
       mlruns/reports/ for the default store) and logged on the top run as report/<file>

An experiment name means its newest FINISHED top-level run (newer KILLED / FAILED ones are
named and passed over; with none finished, the newest run); a run id or sweep means that run.
A report of a run that did not finish opens with a banner saying so. Bad input (unknown
experiment / run id / sweep, a run still RUNNING, an unwritable path) is a one-line
ConfigError (exit 2 from the CLI).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from lit_mia import config, tracking
from lit_mia.errors import ConfigError
from lit_mia.paths import creatable
from lit_mia.report_html.collect import RUN_ID, Study, collect, resolve, skipped_newer, which
from lit_mia.report_html.render import page


def _values(cfg) -> dict[str, str]:
    """Flat key -> value as a `key=value` override writes it (JSON for lists, null, bools)."""
    data = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    out: dict[str, str] = {}

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v if isinstance(v, str) else json.dumps(v)

    walk(data, "")
    return out


def rerun_command(study: Study) -> str:
    """`lit-mia run EXPERIMENT key=value ...`: the logged config's keys that differ from the
    experiment file's resolution today (sweeps: `lit-mia sweep NAME`)."""
    top = study.top
    if study.kind == "sweep":
        name = top.tags.get("lit_mia.sweep", "SWEEP")
        n = top.params.get("sweep.n_trials")
        return f"lit-mia sweep {name}" + (f" sweep.n_trials={n}" if n else "")
    exp = top.tags.get("lit_mia.experiment")
    text = study.texts.get("config.yaml", "")
    if not exp or not text:
        return "not logged"
    try:
        logged = _values(OmegaConf.create(text))
        now = _values(config.load(exp, []))
    except ConfigError as e:
        return f"lit-mia run {exp} (cannot diff against today's {exp}: {e})"
    skip = ("label", "target.") if study.kind == "experiment" else ()
    diff = [
        f"{k}={v}"
        for k, v in logged.items()
        if now.get(k) != v and not (skip and k.startswith(skip))
    ]
    return " ".join(["lit-mia run", exp, *map(shlex.quote, diff)])


def manifest(study: Study) -> dict[str, str]:
    top = study.top
    tags = top.tags
    versions = ", ".join(f"{k[len('version.') :]} {v}" for k, v in sorted(tags.items())
                         if k.startswith("version."))  # fmt: skip
    return {
        "git commit": tags.get("git_sha", "not logged"),
        "package versions": versions or "not logged",
        "seed": tags.get("seed", top.params.get("seed", "not logged")),
        "MLflow store": study.uri,
        "MLflow experiment": study.experiment,
        "MLflow run id (top)": top.run_id,
        "rerun": rerun_command(study),
    }


def default_output(uri: str, top: tracking.StoredRun) -> Path:
    """`reports/<run name>-<run id>.html` beside a SQLite store (mlruns/reports by default,
    ignored by git), else under the working directory."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", top.name or "run").strip("_") or "run"
    folder = Path(uri[len("sqlite:///") :]).parent if uri.startswith("sqlite:///") else Path()
    return folder / "reports" / f"{slug}-{top.run_id[:8]}.html"


@dataclass
class Located:
    """What `lit-mia report` would write (`--dry-run` stops here): the store, the top run of
    the target and the output path."""

    store: tracking.Store
    top: tracking.StoredRun
    path: Path
    skipped: list[tracking.StoredRun] = field(default_factory=list)  # newer, unfinished

    def which(self) -> str:
        """`reporting run <id> (<name>, <status>, started ...)` and the runs passed over."""
        return which(self.top, self.skipped)


def locate(target: str, overrides: list[str], output: str | None = None) -> Located:
    """Resolve the target in its store and check the output path; creates nothing. A missing
    store, an unknown target, a run still RUNNING or an unwritable path is a ConfigError."""
    exp_file = config.CONF_DIR / "experiment" / f"{target}.yaml"
    cfg = config.load(target if exp_file.is_file() else "single", overrides)
    tr = cfg.tracking
    store = tracking.Store(tr.uri, tr.artifact_root)
    configured = tracking.mlflow_experiment(tr.experiment) if exp_file.is_file() else None
    top = resolve(store, target, configured)
    path = Path(output) if output else default_output(store.uri, top)
    creatable(path, "cannot write the report to")
    if path.is_dir():
        raise ConfigError(f"cannot write the report to {path}: it is a folder, give a file name")
    by_name = not RUN_ID.fullmatch(target) and "lit_mia.study" not in top.tags
    return Located(store, top, path, skipped_newer(store, top) if by_name else [])


def build_report(
    target: str, overrides: list[str], output: str | None = None, where: Located | None = None
) -> Path:
    """Write the report of `target` (located by `locate` unless `where` is given) and log it
    on the top run; returns the written path. An experiment name reports its newest FINISHED
    run; a KILLED or FAILED run's report opens with a banner saying so."""
    where = where or locate(target, overrides, output)
    store, top, path = where.store, where.top, where.path
    study = collect(store, top)
    text = page(study, manifest(study))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write the report to {path}: {e.strerror or e}") from None
    store.log_file(top.run_id, path, "report")
    return path.resolve()


__all__ = ["Located", "build_report", "locate", "manifest", "rerun_command"]

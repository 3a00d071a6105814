"""Running a study: the launcher (`lit-mia sweep SWEEP [--workers N]`) and the worker loop.

- One study per sweep on real storage (`storage.py`); one MLflow parent run per study (its id
  kept as a study attribute, reused on resume and by every worker), one child run per trial.
- `sweep.n_trials` is the number of COMPLETE trials the study should hold in total, whoever ran
  them: a worker starts a trial only while completed + running trials are fewer, waits while
  other workers' running trials would fill the budget, and stops once it is reached. Rerunning
  a finished sweep runs nothing; raise `sweep.n_trials` to extend it.
- No point twice: each worker's sampler seed is derived from `sweep.seed`, the study, the
  worker index and the trials already in the study, and in discrete spaces a suggested point
  that is already COMPLETE, RUNNING or queued is pruned and replaced by an unevaluated point.
- Faults: a trial that raised (an error, Ctrl-C, SIGTERM) ends FAIL with its MLflow run
  FAILED / KILLED and is re-enqueued with the same parameters by the next invocation; a worker
  killed outright is handled by storage heartbeats (`storage.StaleTrialReaper`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import OmegaConf

from lit_mia import config, tracking
from lit_mia.errors import ConfigError
from lit_mia.run import run_experiment
from lit_mia.sweep import fixed, pareto, storage
from lit_mia.sweep.spec import (
    ParamSpec,
    SweepSpec,
    grid_points,
    objective_value,
    resolve,
    same_point,
)

S = optuna.trial.TrialState
LIVE = (S.COMPLETE, S.RUNNING, S.WAITING)


class Sweep:
    """A loaded sweep: spec, experiment overrides, base config, storage URL and study."""

    def __init__(
        self,
        name: str,
        overrides: list[str] | None,
        workers: int | None = None,
        new_study: bool = False,
    ):
        self.name = name
        self.overrides = list(overrides or [])
        spec, self.exp_overrides, base = resolve(name, self.overrides, workers)
        self.spec: SweepSpec = spec
        self.base = base
        if not any(o.split("=", 1)[0].strip() == "tracking.experiment" for o in self.exp_overrides):
            # the sweep's runs under its own MLflow experiment, not the base experiment's
            self.exp_overrides.append(f"tracking.experiment={sweep_experiment(name)}")
            OmegaConf.update(base, "tracking.experiment", sweep_experiment(name))
        searched = [*spec.params, *spec.tie]
        self.settings = fixed.fixed_settings(base, spec.experiment, searched)
        if new_study:  # one study per setting; workers get the name through the overrides
            spec.sweep.study_name = f"{spec.sweep.study_name}-{fixed.digest(self.settings)}"
            self.overrides.append(f"sweep.study_name={spec.sweep.study_name}")
        tr = base.tracking
        # nothing is created before both stores answer (storage.check makes a SQLite folder)
        self.tracking_uri = tracking.resolve_uri(tr.uri, tr.artifact_root, create=False)[0]
        tracking.check_reachable(self.tracking_uri)  # <= 10 s, before any trial
        self.url = storage.default_url(spec.sweep.storage, tr.uri, tr.artifact_root, False)
        storage.check(self.url)
        self.study_name = spec.sweep.study_name
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        quiet_interrupts()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            st = storage.open_storage(self.url, spec.sweep, self.tracking_uri, self.study_name)
            self.study = optuna.create_study(
                study_name=self.study_name,
                storage=st,
                load_if_exists=True,
                directions=[o.direction for o in spec.objectives],
            )
            wanted = [o.metric for o in spec.objectives]
            names = self.study.metric_names
            if names is not None and list(names) != wanted:
                raise ConfigError(
                    f"study {self.study_name!r} was created with objectives {list(names)}, not "
                    f"{wanted}; use another sweep.study_name"
                )
            self.study.set_metric_names(wanted)
            fixed.check(self.study, self.study_name, self.settings)

    # ---------------------------------------------------------------- MLflow parent
    def parent_run(self) -> tracking.Run:
        """The study's MLflow parent run (reopened when an earlier invocation created it)."""
        tr = self.base.tracking
        parent_id = self.study.user_attrs.get(storage.PARENT_ATTR)
        return tracking.Run(
            tr.uri,
            tr.experiment,
            f"sweep/{self.study_name}",
            artifact_root=tr.artifact_root,
            run_id=parent_id,
            tags={
                "lit_mia.study": self.study_name,
                "lit_mia.storage": storage.shown(self.url),
                "lit_mia.sweep": self.name,
            },
        )

    def log_spec(self, parent: tracking.Run) -> None:
        spec = self.spec
        flat = config.flatten(OmegaConf.structured(spec.sweep))
        objectives = ",".join(f"{o.metric}:{o.direction}" for o in spec.objectives)
        parent.log_params(
            {"sweep." + k: v for k, v in flat.items()}
            | {"sweep.experiment": spec.experiment, "sweep.objectives": objectives}
        )
        parent.log_text(OmegaConf.to_yaml(OmegaConf.structured(spec)), "sweep.yaml")
        self.study.set_user_attr(storage.PARENT_ATTR, parent.run_id)

    # ---------------------------------------------------------------- retries on resume
    def requeue_failed(self) -> None:
        """Enqueue once more every point whose trials all FAILED (an error or interrupt)."""
        chains: dict[int, list] = {}
        for t in self.study.get_trials(deepcopy=False):
            root = t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial", t.number))
            chains.setdefault(root, []).append(t)
        for root, chain in chains.items():
            if all(t.state == S.FAIL for t in chain) and chain[0].params:
                self.study.enqueue_trial(chain[0].params, user_attrs={"retry_of": root})


def sweep_experiment(name: str) -> str:
    """`tracking.experiment` of a sweep's parent and trial runs: `sweep/<sweep name>` (MLflow
    experiment `lit_mia/sweep/<name>`), unless the overrides set one."""
    return f"sweep/{Path(name).stem}"


class _NoInterruptTraceback:
    """Logging filter: no Optuna "Trial N failed ... KeyboardInterrupt" warning with its
    traceback (Ctrl-C of a sweep is one line from the CLI, not a traceback per worker), and no
    "failed with value None" echo after a trial that raised."""

    def filter(self, record) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            return False
        # the second line Optuna adds to any raised trial; the first one says why
        return not record.getMessage().endswith("failed with value None.")


def quiet_interrupts() -> None:
    logger = logging.getLogger("optuna")
    if not any(isinstance(f, _NoInterruptTraceback) for f in logger.filters):
        logger.addFilter(_NoInterruptTraceback())
    for handler in logger.handlers:  # optuna logs through its own handler on "optuna"
        if not any(isinstance(f, _NoInterruptTraceback) for f in handler.filters):
            handler.addFilter(_NoInterruptTraceback())


def worker_seed(seed: int, study_name: str, worker: int, n_trials: int) -> int:
    """Sampler seed of one worker: distinct per study, worker and resume point."""
    h = hashlib.sha256(f"{seed}/{study_name}/{worker}/{n_trials}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def make_sampler(spec: SweepSpec, seed: int):
    s = spec.sweep
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.sampler == "grid":
        space = {}
        for k, p in spec.params.items():
            if p.type != "categorical":
                raise ConfigError(f"sweep.sampler=grid needs categorical params; {k} is {p.type}")
            space[k] = list(p.choices)
        return optuna.samplers.GridSampler(space, seed=seed)
    if s.sampler == "nsga2":  # first generation random, then evolution
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, s.n_trials // 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _suggest(trial, key: str, p: ParamSpec) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(key, list(p.choices))
    if p.type == "int":
        return trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(key, p.low, p.high, step=p.step, log=p.log)


def _counts(trials) -> tuple[int, int, int]:
    n = {s: 0 for s in LIVE}
    for t in trials:
        if t.state in n:
            n[t.state] += 1
    return n[S.COMPLETE], n[S.RUNNING], n[S.WAITING]


def _free_points(grid, trials, exclude: int | None = None) -> list[dict[str, Any]]:
    taken = [
        t.params or t.system_attrs.get("fixed_params") or {}
        for t in trials
        if t.state in LIVE and t.number != exclude
    ]
    return [g for g in grid if not any(same_point(g, p) for p in taken)]


def work(sw: Sweep, parent_run_id: str, worker: int = 0) -> int:
    """Run trials until the study holds `sweep.n_trials` COMPLETE ones; returns how many this
    worker completed."""
    spec, study = sw.spec, sw.study
    n_target = spec.sweep.n_trials
    grid = grid_points(spec.params)
    seed = worker_seed(spec.sweep.seed, sw.study_name, worker, len(study.trials))
    study.sampler = make_sampler(spec, seed)
    rng = np.random.default_rng(seed)
    metrics = [o.metric for o in spec.objectives]

    def objective(trial: optuna.Trial):
        trial.set_user_attr("worker", worker)
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state == S.COMPLETE for t in trials)
        ahead = sum(t.state == S.RUNNING and t.number < trial.number for t in trials)
        if done + ahead >= n_target:  # another worker took the last slot meanwhile
            # an enqueued point (optuna.Trial has no system_attrs: read this trial's frozen copy)
            mine = [t for t in trials if t.number == trial.number]
            fixed = mine[0].system_attrs.get("fixed_params") if mine else None
            if fixed:
                study.enqueue_trial(fixed, user_attrs=dict(trial.user_attrs))
            raise optuna.TrialPruned("over budget: the study's trials are all taken")
        values = {k: _suggest(trial, k, p) for k, p in spec.params.items()}
        if grid is not None:
            for t in trials:
                older = t.state == S.COMPLETE or (t.state in LIVE and t.number < trial.number)
                point = t.params or t.system_attrs.get("fixed_params") or {}
                if t.number != trial.number and older and same_point(point, values):
                    free = _free_points(grid, trials, exclude=trial.number)
                    if free:  # keep the sweep moving: an unevaluated point instead
                        study.enqueue_trial(free[int(rng.integers(len(free)))])
                    trial.set_user_attr("duplicate_of", t.number)
                    raise optuna.TrialPruned(f"duplicate of trial {t.number}")
        ties = {dst: values[src] for dst, src in spec.tie.items()}
        trial_ov = [*sw.exp_overrides, *(f"{k}={v}" for k, v in {**values, **ties}.items())]
        try:
            results = run_experiment(
                spec.experiment,
                trial_ov,
                parent_run_id=parent_run_id,
                run_name=storage.run_name(sw.study_name, trial.number),
            )
        except SystemExit as e:  # Lightning turns SIGTERM into SystemExit: fail the trial
            raise KeyboardInterrupt(f"terminated ({e})") from e
        (res,) = results.values()
        trial.set_user_attr("mlflow_run_id", res.run_id or "")
        logged = dict(res.metrics)
        if res.run_id:  # per-epoch metrics (val/*) at their last epoch
            logged = tracking.Store(sw.tracking_uri).run(res.run_id).metrics | logged
        out = [objective_value(m, logged) for m in metrics]
        missing = [m for m, v in zip(metrics, out) if v is None]
        if missing:
            raise ConfigError(
                f"objective metric(s) {missing} were not logged by trial {trial.number}; "
                f"it logged {', '.join(sorted(k for k in logged if '/' in k)[:40])}"
            )
        return tuple(out)

    completed, said_wait = 0, False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        done, running, waiting = _counts(trials)
        if done >= n_target:
            return completed
        if done + running >= n_target:  # other workers hold the rest of the budget
            if not said_wait:
                print(f"worker {worker}: waiting for {running} running trial(s)", flush=True)
                said_wait = True
            time.sleep(spec.sweep.heartbeat_interval)
            continue
        if grid is not None and not waiting and not _free_points(grid, trials):
            if not running:
                print(f"worker {worker}: all {len(grid)} points of the search space evaluated")
                return completed
            time.sleep(spec.sweep.heartbeat_interval)
            continue
        said_wait = False
        before = len(trials)
        study.optimize(objective, n_trials=1, gc_after_trial=True)
        new = study.get_trials(deepcopy=False)[before:]
        completed += sum(
            t.state == S.COMPLETE and t.user_attrs.get("worker") == worker for t in new
        )


def launch_workers(sw: Sweep, parent_run_id: str, n: int, threads: int | None = None) -> list[int]:
    """Run `n` worker processes on the study, `threads` torch threads each (default: an equal
    share of the cores); their exit codes."""
    threads = threads or max(1, (os.cpu_count() or 1) // n)
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "lit_mia.sweep.worker", sw.name, parent_run_id]
    procs = [subprocess.Popen([*cmd, str(i), *sw.overrides], env=env) for i in range(n)]
    try:
        return [p.wait() for p in procs]
    except BaseException:  # Ctrl-C / SIGTERM: stop the workers (their trials end FAIL)
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise


def finish(sw: Sweep, parent: tracking.Run) -> str:
    """Log the summary table, and for several objectives the Pareto front (table, plot, tags
    `lit_mia.pareto` on the trials' runs); returns the summary."""
    spec, study = sw.spec, sw.study
    table = summary_table(study, spec)
    parent.log_text(table, "summary.md")
    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state == S.COMPLETE]
    parent.log_metrics({"sweep/n_complete": len(done), "sweep/n_trials": len(trials)})
    metrics = [o.metric for o in spec.objectives]
    if len(metrics) > 1 and done:
        values = np.array([t.values for t in done], dtype=float)
        mask = pareto.pareto_mask(values, [o.direction for o in spec.objectives])
        rows = [
            {"number": t.number, "params": t.params, "values": t.values,
             "run_id": t.user_attrs.get("mlflow_run_id", "")}
            for t, on in zip(done, mask) if on
        ]  # fmt: skip
        parent.log_text(pareto.front_table(rows, list(spec.params), metrics), "pareto.md")
        parent.log_figure(
            pareto.front_figure(values, mask, metrics, f"{sw.study_name}: Pareto front"),
            "plots/pareto.png",
        )
        parent.log_metrics({"sweep/n_pareto": int(mask.sum())})
        tags = {
            t.user_attrs["mlflow_run_id"]: {"lit_mia.pareto": str(bool(on)).lower()}
            for t, on in zip(done, mask)
            if t.user_attrs.get("mlflow_run_id")
        }
        if tracking.is_rank_zero():
            tracking.set_tags(sw.tracking_uri, tags)
    return table


def run_sweep(
    name: str,
    overrides: list[str] | None = None,
    workers: int | None = None,
    new_study: bool = False,
):
    """Create or resume the study and run it to `sweep.n_trials` COMPLETE trials with
    `workers` local processes (1: in this process); `new_study`: the study of this setting
    (`fixed.py`) instead of `sweep.study_name`. Returns the study."""
    sw = Sweep(name, overrides, workers, new_study)
    n = sw.spec.sweep.workers
    codes: list[int] = []
    with sw.parent_run() as parent:
        if sw.study.user_attrs.get(storage.PARENT_ATTR) != parent.run_id:
            sw.log_spec(parent)
        sw.requeue_failed()
        if n == 1:
            work(sw, parent.run_id)
        else:
            codes = launch_workers(sw, parent.run_id, n)
        table = finish(sw, parent)
    print(table)
    trials = sw.study.get_trials(deepcopy=False)
    done = sum(t.state == S.COMPLETE for t in trials)
    print(f"\nstudy {sw.study_name!r} in {storage.shown(sw.url)}: {done} complete of "
          f"{len(trials)} trials")  # fmt: skip
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        msg = ", ".join(f"worker {i} exit {c}" for i, c in bad)
        if all(c == 2 for _, c in bad):
            raise ConfigError(f"sweep workers failed: {msg}")
        raise RuntimeError(f"sweep workers failed: {msg}; rerun the command to resume")
    return sw.study


def summary_table(study, spec: SweepSpec) -> str:
    """Markdown table of every trial: number, state, params, objective values; * = best."""
    trials = study.get_trials(deepcopy=False)
    best = (
        {t.number for t in study.best_trials}
        if any(t.state == S.COMPLETE for t in trials)
        else set()
    )
    keys = list(spec.params)
    metrics = [o.metric for o in spec.objectives]
    head = "| trial | state | " + " | ".join(keys + metrics) + " |"
    rows = [head, "|---" * (len(keys) + len(metrics) + 2) + "|"]
    for t in trials:
        p = [pareto._fmt(t.params.get(k)) for k in keys]
        v = [pareto._fmt(x) for x in (t.values or [None] * len(metrics))]
        mark = "*" if t.number in best else ""
        rows.append(f"| {t.number}{mark} | {t.state.name} | " + " | ".join(p + v) + " |")
    return "\n".join(rows)

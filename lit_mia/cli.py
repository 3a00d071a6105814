"""`lit-mia` command line.

    lit-mia run EXPERIMENT [key=value ...]     train, attack and track an experiment
    lit-mia sweep SWEEP [--workers N] [--new-study] [key=value ...]   Optuna study over an
                                               experiment (resumable; N worker processes on one
                                               study; refuses a study made with other settings)
    lit-mia config EXPERIMENT [key=value ...]  print the resolved config
    lit-mia list                               config groups and the names in each
    lit-mia report TARGET [-o FILE] [key=value ...]   HTML study report of an experiment, run
                                               id or sweep (overrides as for run: tracking.uri)
    lit-mia audit CHECKPOINT members=FILE [key=value ...]   audit a state dict trained elsewhere
    lit-mia reproduce [CLAIM ...] [--tier quick|cpu|paper] [--list]   check the seed papers'
                                               findings (lit_mia/reproduce/command.py)
    lit-mia plan key=value ... [--json]        members, non-members or canaries an audit needs
                                               (lit_mia/plan.py); no training

`--budget NAME=LIMIT[,NAME=LIMIT]` (run, audit; repeatable) is a leakage gate for CI: exit 3 and
one `budget exceeded:` line when a budget fails, `within budget:` and exit 0 otherwise; the
verdict is tagged on the MLflow run (`lit_mia.budget`), which still ends FINISHED
(lit_mia/metrics/budget.py says which statistic each budget compares).

Options and overrides go in any order after the subcommand. `--dry-run` (run, sweep, report,
audit) makes every check the command makes before it trains, prints the plan, and trains,
writes and logs nothing (lit_mia/dry_run.py).

EXPERIMENT is a name under conf/experiment/ or a path to a YAML file; SWEEP a name under
sweeps/ or a path. Bad input prints `error: <one line naming the key>` and exits 2.
"""

from __future__ import annotations

import argparse
import signal
import sys

from lit_mia.errors import ConfigError
from lit_mia.quiet import quiet_lightning

EXIT_CONFIG = 2
EXIT_BUDGET = 3
INTERRUPTED = {  # what Ctrl-C left behind, one line (docs/howto/sweeps-and-interrupts.md)
    "run": "MLflow runs marked KILLED; a rerun starts afresh (cached LiRA/RMIA references "
    "are reused, targets retrain)",
    "audit": "MLflow run marked KILLED; a rerun starts afresh",
    "sweep": "MLflow runs marked KILLED, running trials FAIL; rerun the same command to "
    "resume (complete trials are kept, failed ones rerun)",
}


def _sigterm_as_interrupt(signum, frame):  # pragma: no cover - signal path
    raise KeyboardInterrupt(f"signal {signum}")


DRY_RUN_HELP = (
    "check everything a real run checks before it trains (config, names, ranges, data, split, "
    "nets, trainer, files, URLs), print the plan, train and log nothing"
)


BUDGET_HELP = (
    "leakage budget, e.g. tpr@0.1%%=0.01, auc=0.6, advantage=0.1, eps=1, mu=0.5 (comma-separated "
    "or repeated): exit 3 when the upper end of the metric's interval (tpr, auc, advantage) or "
    "its certified lower bound (eps, mu) exceeds it"
)


class _SubParser(argparse.ArgumentParser):
    def error(self, message: str):
        # intermixed parsing lists the optional `overrides` among missing arguments
        super().error(message.replace(", overrides", ""))


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and one parser per subcommand."""
    p = argparse.ArgumentParser(
        prog="lit-mia",
        description="Membership inference against naturally and robustly trained models.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_SubParser)
    subs: dict[str, argparse.ArgumentParser] = {}
    for name, what, help_ in (
        ("run", "experiment", "train targets, run attacks, log everything to MLflow"),
        ("config", "experiment", "print the resolved configuration"),
        ("sweep", "sweep", "run or resume an Optuna study (sweeps/<name>.yaml)"),
    ):
        sp = subs[name] = sub.add_parser(name, help=help_)
        sp.add_argument(what, help=f"name under conf/{what}/ or sweeps/, or a YAML path")
        sp.add_argument("overrides", nargs="*", help="key=value overrides, e.g. target.eps=0.2")
        if name == "sweep":
            sp.add_argument("--workers", type=int, help="worker processes (default sweep.workers)")
            sp.add_argument(
                "--new-study",
                action="store_true",
                help="fixed settings differ from the study's: use the study <name>-<settings hash>",
            )
    subs["list"] = sub.add_parser("list", help="list config groups and their names")
    sp = subs["report"] = sub.add_parser(
        "report", help="self-contained HTML report of a logged study"
    )
    sp.add_argument("target", help="experiment name, MLflow run id or sweep name")
    sp.add_argument("overrides", nargs="*", help="key=value as for run, e.g. tracking.uri=...")
    sp.add_argument("-o", "--output", help="HTML file (default: mlruns/reports/<run>.html)")
    sp = subs["audit"] = sub.add_parser(
        "audit", help="audit a state dict trained elsewhere (members=FILE)"
    )
    sp.add_argument("checkpoint", help="state dict of net.name, loaded with weights_only=True")
    sp.add_argument("overrides", nargs="*", help="members=FILE [nonmembers=FILE] key=value ...")
    for name in ("run", "sweep", "report", "audit"):
        subs[name].add_argument("--dry-run", action="store_true", help=DRY_RUN_HELP)
    for name in ("run", "audit"):
        subs[name].add_argument(
            "--budget",
            action="append",
            metavar="NAME=LIMIT",
            help=BUDGET_HELP,
        )
    sp = subs["plan"] = sub.add_parser(
        "plan", help="members, non-members or canaries an audit needs (no training)"
    )
    sp.add_argument(
        "overrides",
        nargs="*",
        help="fpr=0.001 tpr=0.1 half_width=0.02 | delta_auc=0.02 auc=0.6 correlation=0 | "
        "eps=1 eps_true=2 mechanism=laplace delta=1e-5 guess_fraction=0.2 | alpha=0.05 "
        "power=0.8 max_n=1e8",
    )
    sp.add_argument("--json", action="store_true", help="print the rows as JSON")
    from lit_mia.reproduce.command import add_parser as add_reproduce

    subs["reproduce"] = add_reproduce(sub)
    return p, subs


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Options and `key=value` overrides in any order after the subcommand
    (`lit-mia sweep eps --workers 2 sweep.n_trials=8` = `... sweep.n_trials=8 --workers 2`):
    each subcommand's parser reads its arguments intermixed."""
    argv = sys.argv[1:] if argv is None else list(argv)
    top, subs = _parsers()
    if not argv or argv[0] not in subs:  # --help, a missing or unknown command: argparse says
        return top.parse_args(argv)
    args = subs[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    quiet_lightning()
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return _dispatch(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        left = INTERRUPTED.get(args.command, "nothing was written")
        print(f"interrupted: {left}", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from lit_mia import config
    from lit_mia.attacks.registry import ATTACKS

    if args.command == "reproduce":
        from lit_mia.reproduce.command import main as reproduce

        return reproduce(args)
    if args.command == "list":
        for group in (*config.GROUPS, "experiment"):
            if group != "attack":
                print(f"{group}: {', '.join(config.group_names(group))}")
        print("attacks (name, kind, description):")
        for name, a in sorted(ATTACKS.items(), key=lambda kv: (kv[1].kind, kv[0])):
            print(f"  {name:<17} {a.kind:<15} {a.description}")
        print(f"sweeps: {', '.join(sorted(p.stem for p in config.SWEEPS_DIR.glob('*.yaml')))}")
        from lit_mia.plugins import describe

        for line in describe():
            print(f"plug-in {line}")
        return 0
    if args.command == "plan":
        from lit_mia.plan import main as plan_main

        print(plan_main(args.overrides, args.json))
        return 0
    budgets = _budgets(args)
    if getattr(args, "dry_run", False):
        from lit_mia import dry_run

        if args.command == "run":
            lines = dry_run.run_plan(args.experiment, args.overrides)
        elif args.command == "sweep":
            lines = dry_run.sweep_plan(args.sweep, args.overrides, args.workers)
        elif args.command == "report":
            lines = dry_run.report_plan(args.target, args.overrides, args.output)
        else:
            lines = dry_run.audit_plan(args.checkpoint, args.overrides)
        print("\n".join(lines))
        if budgets:
            if args.command == "run":
                for cfg in config.per_target(args.experiment, args.overrides):
                    _check_budgets(budgets, cfg)
            print("budget: " + "; ".join(f"{b.name} <= {b.limit:g}" for b in budgets))
        return 0
    if args.command == "audit":
        from lit_mia.auditing.checkpoint import audit_checkpoint
        from lit_mia.comparison import comparison_table
        from lit_mia.tracking import mlflow_experiment

        def check(cfg):
            _check_budgets(budgets, cfg)

        result, cfg = audit_checkpoint(args.checkpoint, args.overrides, check=check)
        print()
        print(comparison_table({result.name: result}, list(cfg.attacks)))
        print_verdicts({result.name: result})
        name = mlflow_experiment(cfg.tracking.experiment)  # as the store and the UI name it
        print(f"\nMLflow: experiment {name!r} in {cfg.tracking.uri} (make ui)")
        return _gate(budgets, {result.name: result}, cfg)
    if args.command == "report":
        from lit_mia.report_html import build_report, locate

        where = locate(args.target, args.overrides, args.output)
        print(where.which())
        path = build_report(args.target, args.overrides, args.output, where)
        if not path.is_file():  # never print a path that was not written
            raise ConfigError(f"the report was not written to {path}")
        print(f"report: {path}")
        return 0
    if args.command == "config":
        cfgs = config.per_target(args.experiment, args.overrides)
        for cfg in cfgs:
            if len(cfgs) > 1:
                print(f"# target {cfg.label or cfg.target.name}")
            print(config.to_yaml(cfg))
        return 0
    if args.command == "run":
        for cfg in config.per_target(args.experiment, args.overrides):  # bad input: exit 2
            _check_budgets(budgets, cfg)  # before torch loads
        from lit_mia.comparison import comparison_table  # lazy: `list`, `config` start fast
        from lit_mia.run import run_experiment
        from lit_mia.tracking import is_rank_zero, mlflow_experiment

        results = run_experiment(args.experiment, args.overrides)
        if is_rank_zero():
            cfg = config.load(args.experiment, args.overrides)
            print()
            print(comparison_table(results, list(cfg.attacks)))
            print_verdicts(results)
            name, uri = mlflow_experiment(cfg.tracking.experiment), cfg.tracking.uri
            print(f"\nMLflow: experiment {name!r} in {uri} (make ui)")
            store = " ".join(o for o in args.overrides if o.startswith("tracking."))
            print(f"report: lit-mia report {args.experiment} {store}".rstrip())
            return _gate(budgets, results, cfg)
        return 0
    if args.command == "sweep":
        from lit_mia.sweep.spec import resolve

        resolve(args.sweep, args.overrides, args.workers)  # bad input: exit 2 before torch loads
        from lit_mia.sweep import run_sweep

        run_sweep(args.sweep, args.overrides, workers=args.workers, new_study=args.new_study)
        return 0
    raise AssertionError(args.command)


def _budgets(args: argparse.Namespace) -> list:
    """The parsed `--budget` values (ConfigError on bad syntax or names: exit 2)."""
    specs = getattr(args, "budget", None)
    if not specs:
        return []
    from lit_mia.metrics.budget import parse_budgets

    return parse_budgets(specs)


def _check_budgets(budgets: list, cfg) -> None:
    """Refuse, before any run, a budget the configured attacks would not measure."""
    if any(b.name == "auc" for b in budgets) and int(cfg.attack.bootstrap) == 0:
        raise ConfigError(
            "budget auc compares the bootstrap interval's upper end (auc_ci_high), which "
            "attack.bootstrap=0 turns off: set attack.bootstrap >= 10 or drop the auc budget"
        )


def _gate(budgets: list, results: dict, cfg) -> int:
    """Compare each target's metrics with the budgets, print one verdict line per target, tag
    its (finished) MLflow run, and return the exit code: 3 when a budget is exceeded, else 2
    when no attack measured one, else 0."""
    if not budgets:
        return 0
    from lit_mia.metrics.budget import unmeasured, verdict_line, verdicts
    from lit_mia.tracking import resolve_uri, set_tags

    code, tags = 0, {}
    for label, res in results.items():
        vs = verdicts(budgets, res.metrics)
        line, missing = verdict_line(vs), unmeasured(vs)
        state = "exceeded" if any(v.exceeded for v in vs) else "within"
        if missing and state == "within":  # an exceeded budget still fails the gate
            state, line = (
                "unmeasured",
                "budget not measured: " + "; ".join(v.text() for v in missing),
            )
        print(line if len(results) == 1 else f"{label}: {line}")
        if res.run_id:
            tags[res.run_id] = {"lit_mia.budget": state, "lit_mia.budget.detail": line[:4000]}
        if state == "exceeded":
            code = EXIT_BUDGET
        elif state == "unmeasured" and code == 0:
            code = EXIT_CONFIG
    if tags:
        set_tags(resolve_uri(str(cfg.tracking.uri), cfg.tracking.artifact_root)[0], tags)
    return code


def print_verdicts(results) -> None:
    """After the table: the paired comparison of each target against the reference target, and
    a warning for every placebo attack that is not at chance (report_html/reading.py)."""
    from lit_mia.report_html.reading import paired_sentences, placebo_warnings

    lines = [s for r in results.values() for s in paired_sentences(r.compared)]
    lines += [w for r in results.values() for w in placebo_warnings(r.name, r.metrics)]
    if lines:
        print()
        print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

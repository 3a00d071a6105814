"""`lit-mia reproduce [CLAIM ...] [--tier quick|cpu|paper] [--list] [-o FILE] [--markdown FILE]
[key=value ...]`: check the seed papers' findings (conf/reproduce/) and say which reproduce.

    --list          print the claims of the tier (id, paper, band, experiment) and exit 0
    --tier          quick (one small claim per paper, seconds), cpu (the default: every claim
                    at CPU scale, `make reproduce`), paper (the papers' scale: GPUs)
    -o FILE         the HTML report (default: reports/reproduce-<tier>.html beside the store),
                    its JSON beside it
    --markdown FILE also write the results as a Markdown page (docs/results/reproduction.md)
    --claims DIR    another folder of claims files (default conf/reproduce/)
    --dry-run       every check `lit-mia run --dry-run` makes (config, data, nets, trainer),
                    for every run of the chosen claims; prints the runs, trains nothing
    key=value       applied to every run after the claims' own overrides (e.g. tracking.uri)

Exit 0 when every chosen claim reproduced, 1 when any did not, 2 on unknown claims, a bad
tier or any config error (before anything trains).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lit_mia.paths import creatable


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the subcommand on cli.py's subparsers."""
    sp = sub.add_parser("reproduce", help="check the seed papers' findings against fixed bands")
    sp.add_argument("items", nargs="*", help="claim ids (all of the tier when none), key=value")
    sp.add_argument("--tier", default="cpu", help="quick | cpu (default) | paper")
    sp.add_argument("--list", action="store_true", help="print the claims and exit")
    sp.add_argument("-o", "--output", help="HTML report (default reports/reproduce-<tier>.html)")
    sp.add_argument("--markdown", help="also write the results as Markdown to this file")
    sp.add_argument("--claims", help="folder of claims files (default conf/reproduce)")
    sp.add_argument(
        "--from-store",
        action="store_true",
        help="train nothing: judge the claims on the newest FINISHED runs with the same config",
    )
    sp.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every chosen claim in its tier, print the runs, train nothing",
    )
    return sp


def split_items(items: list[str]) -> tuple[list[str], list[str]]:
    """(claim ids, key=value overrides)."""
    return [i for i in items if "=" not in i], [i for i in items if "=" in i]


def list_lines(papers, names: list[str], tier: str) -> list[str]:
    from lit_mia.reproduce.claims import select

    out = []
    for c in select(papers, names, tier):
        out.append(f"{c.id}  [{c.paper}]  {c.statistic_text()} {c.band.text()}")
        out.append(f"    {c.finding}")
        out.append(f"    {c.command(tier)}")
    return out


def default_output(uri: str, tier: str) -> Path:
    folder = Path(uri[len("sqlite:///") :]).parent if uri.startswith("sqlite:///") else Path()
    return folder / "reports" / f"reproduce-{tier}.html"


def main(args: argparse.Namespace) -> int:
    from lit_mia.reproduce.claims import load_papers, resolved

    names, extra = split_items(args.items)
    papers = load_papers(Path(args.claims)) if args.claims else load_papers()
    if args.list:
        print("\n".join(list_lines(papers, names, args.tier)))
        return 0
    from lit_mia.reproduce import report
    from lit_mia.reproduce.runner import plan, reproduce

    groups = plan(papers, names, args.tier, extra)  # every ConfigError before training
    uri = str(groups[0].cfg.tracking.uri)
    out = Path(args.output) if args.output else default_output(uri, args.tier)
    creatable(out, "cannot write the reproduction report to")
    if args.markdown:
        creatable(args.markdown, "cannot write the Markdown page to")
    if args.dry_run:  # every check `lit-mia run --dry-run` makes, for every run
        from lit_mia.dry_run import experiment_lines

        lines = []
        for g in groups:
            lines.append(f"{g.command()}  ({', '.join(c.id for c in g.claims)})")
            lines += [f"  {x}" for x in experiment_lines(list(resolved(g.experiment, g.overrides)))]
        n = sum(len(g.claims) for g in groups)
        print(f"dry run: every check passed; {n} claims in {len(groups)} runs, nothing trained, "
              f"report {out} (--dry-run)")  # fmt: skip
        print("\n".join(lines))
        return 0

    def say(g, i, n):
        print(f"[{i + 1}/{n}] {g.command()}  ({', '.join(c.id for c in g.claims)})", flush=True)

    from lit_mia.reproduce.runner import stored_runner

    runner = stored_runner if args.from_store else None
    rep = reproduce(papers, names, args.tier, extra, runner=runner, on_group=say, groups=groups)
    html_path, js = report.write(rep, out)
    print()
    for r in rep.results:
        print(f"{r.verdict:<15} {r.claim.id:<38} {report.ours(r)}  band {r.claim.band.text()}")
    n_ok = len(rep.results) - len(rep.failed)
    print(f"\n{n_ok} of {len(rep.results)} claims reproduced; wall {rep.wall_s:.0f} s, "
          f"CPU {rep.cpu_s:.0f} s")  # fmt: skip
    if args.markdown:
        md = Path(args.markdown)
        md.parent.mkdir(parents=True, exist_ok=True)
        source = (
            "verdicts judged on the runs already in the store (--from-store): the times are "
            "those of reading it, not of the runs"
            if args.from_store
            else ""
        )
        md.write_text(report.markdown(json.loads(js.read_text()), source), encoding="utf-8")
        print(f"markdown: {md}")
    print(f"report: {html_path.resolve()}")
    return 1 if rep.failed else 0


__all__ = ["add_parser", "default_output", "list_lines", "main", "split_items"]

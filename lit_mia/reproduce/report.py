"""The reproduction report: one self-contained HTML page in the style of `lit-mia report`
(report_html/render.py's CSS, sortable tables) and the same table as Markdown for the docs
site (docs/results/reproduction.md is written by `make reproduce`, never by hand).

Per claim: paper, claim id and finding, the paper's number and where it is, our statistic
with its 95% interval and how the interval was formed, the band, the verdict and why, and the
MLflow run(s) it was measured on (a link into `make ui`, and the `lit-mia run` command that
reruns it).
"""

from __future__ import annotations

import json
from pathlib import Path

from lit_mia.report_html.render import CSP, CSS, SORT_JS, esc, table
from lit_mia.reproduce.runner import ClaimResult, Reproduction
from lit_mia.reproduce.verdict import REPRODUCED

UI = "http://127.0.0.1:5000"  # `make ui` (PORT=5000)

EXTRA_CSS = ".pass{color:#11693a;font-weight:600}.fail{color:#b00;font-weight:600}"


def _num(v: float) -> str:
    return f"{v:+.4f}" if abs(v) < 10 else f"{v:+.3g}"


def ours(r: ClaimResult) -> str:
    m = r.measurement
    return "–" if m is None else f"{_num(m.value)} [{_num(m.low)}, {_num(m.high)}]"


def runs_of(r: ClaimResult) -> list[tuple[str, str]]:
    """(label, run id) of every run the claim read."""
    out = []
    for label in dict.fromkeys(r.targets):
        rid = r.group.run_ids.get(label)
        if rid:
            out.append((label, rid))
    return out


def _duration(s: float) -> str:
    return f"{int(s // 60)} min {s % 60:.0f} s"


def machine_text(m: dict) -> str:
    """'commit 6f02074, AMD EPYC 7B13, 2 cores, 2 torch threads, load 0.1 -> 1.9' (or '')."""
    if not m:
        return ""
    parts = [f"commit {str(m.get('commit', 'unknown'))[:12]}", str(m.get("cpu", "?"))]
    parts += [f"{m.get('cores')} cores", f"{m.get('torch_threads')} torch threads"]
    load = f"load {m.get('load_1min')}"
    if "load_1min_after" in m:
        load += f" -> {m['load_1min_after']}"
    return ", ".join([*parts, load])


def to_dict(rep: Reproduction) -> dict:
    """Everything the pages show, as JSON (written beside the HTML)."""
    return {
        "tier": rep.tier,
        "wall_s": rep.wall_s,
        "cpu_s": rep.cpu_s,
        "tracking_uri": rep.tracking_uri,
        "machine": rep.machine,
        "claims": [
            {
                "id": r.claim.id,
                "paper": r.claim.paper,
                "finding": r.claim.finding,
                "paper_value": r.claim.paper_value,
                "source": r.claim.source,
                "statistic": r.statistic_text(),
                "targets": list(r.targets),
                "value": None if r.measurement is None else r.measurement.value,
                "low": None if r.measurement is None else r.measurement.low,
                "high": None if r.measurement is None else r.measurement.high,
                "interval": None if r.measurement is None else r.measurement.how,
                "band": r.claim.band.text(),
                "verdict": r.verdict,
                "reason": r.reason,
                "runs": dict(runs_of(r)),
                "command": r.group.command(),
            }
            for r in rep.results
        ],
        "runs": [
            {"command": g.command(), "wall_s": g.wall_s, "cpu_s": g.cpu_s, "error": g.error}
            for g in rep.groups
        ],
    }


def html_page(rep: Reproduction) -> str:
    n_ok = sum(r.verdict == REPRODUCED for r in rep.results)
    title = f"lit_mia reproduction: {rep.tier} tier"
    rows = []
    for r in rep.results:
        c, paper = r.claim, rep.papers[r.claim.paper]
        links = (
            " ".join(
                f'<a href="{esc(UI)}/#/experiments/{esc(r.group.experiment_ids.get(lb, "0"))}/runs/'
                f'{esc(rid)}" title="{esc(lb)}"><code>{esc(rid[:8])}</code></a>'
                for lb, rid in runs_of(r)
            )
            or '<span class="muted">no run</span>'
        )
        cls, m = ("pass" if r.verdict == REPRODUCED else "fail"), r.measurement
        interval = "" if r.measurement is None else r.measurement.how
        rows.append(
            f"<td>{esc(paper.venue)}</td>"
            f"<td><code>{esc(c.id)}</code><br>{esc(c.finding)}</td>"
            f"<td>{esc(c.paper_value)}<br><span class='muted'>{esc(c.source)}</span></td>"
            f"<td><code>{esc(r.statistic_text())}</code></td>"
            f'<td class="num" data-value="{"" if m is None else m.value!r}">'
            f"{esc(ours(r))}<br><span class='muted'>{esc(interval)}</span></td>"
            f"<td>{esc(c.band.text())}</td>"
            f'<td class="{cls}">{esc(r.verdict)}<br><span class="muted">{esc(r.reason)}</span></td>'
            f"<td>{links}</td>"
        )
    claims = table(
        ["paper", "claim", "paper's value", "statistic", "ours [95% interval]", "band",
         "verdict", "MLflow run"],
        rows,
    )  # fmt: skip
    runs = table(
        ["run (rerun with)", "wall", "CPU", "status"],
        [
            f"<td><code>{esc(g.command())}</code><br>{esc(', '.join(c.id for c in g.claims))}"
            f'</td><td class="num">{esc(_duration(g.wall_s))}</td><td class="num">'
            f"{esc(_duration(g.cpu_s))}</td><td>{esc(g.error or 'FINISHED')}</td>"
            for g in rep.groups
        ],
    )
    intro = (
        f"<h1>{esc(title)}</h1><p class='muted'>{len(rep.results)} claims from "
        f"{len({r.claim.paper for r in rep.results})} papers · {len(rep.groups)} runs · "
        f"wall {esc(_duration(rep.wall_s))}, CPU {esc(_duration(rep.cpu_s))} · "
        f"{esc(machine_text(rep.machine))} · store "
        f"<code>{esc(rep.tracking_uri)}</code></p>"
        f"<p class='lead'><strong>{n_ok} of {len(rep.results)} reproduced.</strong> A claim is "
        "reproduced when the whole 95% interval of its statistic clears its band (fixed in "
        "conf/reproduce/ before the runs); anything else is <em>not reproduced</em>, shown "
        "with its value. Tables sort by a click on their header.</p>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}{EXTRA_CSS}</style></head><body>"
        + intro
        + "<section><h2>Claims</h2>" + claims + "</section>"
        + "<section><h2>Runs</h2>" + runs + "</section>"
        + f"<script>{SORT_JS}</script></body></html>"
    )  # fmt: skip


def _md(x: str) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def markdown(data: dict, source: str = "") -> str:
    """The docs results page from the report's JSON (to_dict)."""
    n_ok = sum(c["verdict"] == REPRODUCED for c in data["claims"])
    lines = [
        "# Reproduction of the papers' findings",
        "",
        "<!-- written by `lit-mia reproduce --markdown FILE` (make reproduce); not edited -->",
        "",
        f"`lit-mia reproduce --tier {data['tier']}`: **{n_ok} of {len(data['claims'])} claims "
        f"reproduced**; wall {_duration(data['wall_s'])}, CPU {_duration(data['cpu_s'])}"
        + (f" ({source})" if source else "")
        + (f" on {machine_text(data['machine'])}" if data.get("machine") else "")
        + ". A claim is reproduced when the whole 95% interval of its statistic clears the "
        "band fixed in `conf/reproduce/` before the run; how to run it and how the intervals "
        "are formed: [Reproduce the papers](../howto/reproduce.md).",
        "",
        "| claim | paper's value | statistic | ours [95% interval] | band | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for c in data["claims"]:
        val = (
            "–"
            if c["value"] is None
            else f"{_num(c['value'])} [{_num(c['low'])}, {_num(c['high'])}]"
            + (f" ({_md(c['interval'])})" if c.get("interval") else "")
        )
        verdict = f"**{c['verdict']}**" if c["verdict"] == REPRODUCED else c["verdict"]
        lines.append(
            f"| `{c['id']}`: {_md(c['finding'])} | {_md(c['paper_value'])} ({_md(c['source'])}) "
            f"| `{_md(c['statistic'])}` | {val} | {_md(c['band'])} "
            f"| {verdict}: {_md(c['reason'])} |"
        )
    lines += ["", "## Runs", "", "| run | claims | wall | CPU |", "|---|---|---|---|"]
    by_cmd: dict[str, list[str]] = {}
    for c in data["claims"]:
        by_cmd.setdefault(c["command"], []).append(c["id"])
    for g in data["runs"]:
        ids = ", ".join(f"`{i}`" for i in by_cmd.get(g["command"], []))
        status = f" (failed: {_md(g['error'])})" if g["error"] else ""
        lines.append(
            f"| `{_md(g['command'])}`{status} | {ids} | {_duration(g['wall_s'])} "
            f"| {_duration(g['cpu_s'])} |"
        )
    return "\n".join(lines) + "\n"


def write(rep: Reproduction, path: Path) -> tuple[Path, Path]:
    """The HTML page at `path` and its JSON beside it (`.json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(rep), encoding="utf-8")
    js = path.with_suffix(".json")
    js.write_text(json.dumps(to_dict(rep), indent=1) + "\n", encoding="utf-8")
    return path, js


__all__ = ["html_page", "machine_text", "markdown", "to_dict", "write"]

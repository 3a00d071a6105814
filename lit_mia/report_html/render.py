"""The study report as one self-contained HTML page: inline CSS, PNGs as data URIs, a few lines
of plain JavaScript that sort a table by a click on its header, and a Content-Security-Policy
that forbids any network access at view time.

Every logged number in a table cell carries `data-key` (the MLflow metric key), `data-run` (the
run id) and `data-value` (the exact float, `repr`), so a test can compare the page with the
tracking store. Sections whose data a run lacks say so instead of disappearing.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from lit_mia.metrics import keys as metric_keys
from lit_mia.report_html import reading
from lit_mia.report_html.collect import Study, TargetData
from lit_mia.report_html.figures import data_uri, pareto_plot, roc_all
from lit_mia.report_html.reading import Number

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
CSS = """
.banner{background:#fdecea;border:2px solid #c0392b;color:#7b1d12;padding:.7em 1em;
margin:1em 0;border-radius:4px}
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:0 1.2em 3em;
color:#1d1d1f}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{border-bottom:2px solid #ddd;margin-top:2em}
h3{margin-top:1.5em}.muted{color:#666}.lead{font-size:1.08em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f4f4f6;cursor:pointer;user-select:none}td.num{text-align:right;
font-variant-numeric:tabular-nums}th.sorted-asc::after{content:" \\25B2"}
th.sorted-desc::after{content:" \\25BC"}
img{max-width:100%;border:1px solid #eee;margin:.3em .3em 0 0}.figs{display:flex;
flex-wrap:wrap;align-items:flex-start}.figs figure{margin:0 .6em .6em 0}
figcaption{font-size:.85em;color:#555}pre{background:#f6f6f8;padding:.7em;overflow:auto;
font-size:.85em;max-height:28em}code{background:#f3f3f5;padding:0 .25em}
.reading li{margin:.3em 0}.front{font-weight:600;color:#b00}
"""
SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  var heads = table.tHead ? table.tHead.rows[0].cells : [];
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('sorted-asc');
      Array.prototype.forEach.call(heads, function (h) {
        h.classList.remove('sorted-asc', 'sorted-desc');
      });
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var c = row.cells[col];
        if (!c) { return ''; }
        var v = c.getAttribute('data-value');
        return v !== null && v !== '' && !isNaN(Number(v)) ? Number(v) : c.textContent;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        return (x > y ? 1 : x < y ? -1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def cell(v: float | None, key: str = "", run: str = "") -> str:
    """A numeric cell; logged numbers carry their metric key, run id and exact value."""
    if v is None:
        return '<td class="num">–</td>'
    attrs = f' data-value="{v!r}"'
    if key:
        attrs += f' data-key="{esc(key)}" data-run="{esc(run)}"'
    return f'<td class="num"{attrs}>{fmt(v)}</td>'


def ci(n: Number | None) -> str:
    if n is None or n.low is None or n.high is None:
        return '<td class="muted">not logged</td>'
    return f'<td class="num" data-value="{n.low!r}">[{fmt(n.low)}, {fmt(n.high)}]</td>'


def table(head: Iterable[str], rows: Iterable[str], cls: str = "sortable") -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def figures(images: dict[str, bytes], caption=lambda p: p) -> str:
    items = (
        f'<figure><img alt="{esc(p)}" src="{data_uri(b)}"><figcaption>{esc(caption(p))}'
        "</figcaption></figure>"
        for p, b in images.items()
    )
    return f'<div class="figs">{"".join(items)}</div>'


def missing(what: str) -> str:
    return f'<p class="muted">{esc(what)}</p>'


# ---------------------------------------------------------------- sections
def summary(study: Study) -> str:
    heads = [reading.headline(t) for t in study.targets]
    rows = []
    for h in heads:
        accs = dict(h.accuracies)
        row = f"<td>{esc(h.label)}</td>"
        for name in ("train acc", "test acc"):
            n = accs.get(name)
            row += cell(n.value if n else None, n.key if n else "", h.run_id) + ci(n)
        row += f"<td>{esc(h.attack or '–')}</td>"
        for n in (h.auc, h.tpr_1, h.tpr_01):
            row += cell(n.value if n else None, n.key if n else "", h.run_id) + ci(n)
        eps = h.eps_lb
        row += cell(eps.value if eps else None, eps.key if eps else "", h.run_id)
        pl = h.placebo
        row += cell(pl.value if pl else None, pl.key if pl else "", h.run_id) + ci(pl)
        rows.append(row)
    head = ["target", "train acc", "95% CI", "test acc", "95% CI", "strongest attack", "AUC",
            "simultaneous CI", "TPR @ 1% FPR", "CI", "TPR @ 0.1% FPR", "CI", "ε lower bound",
            "placebo AUC", "simultaneous CI"]  # fmt: skip
    words = [reading.sentence(h) for h in heads]
    paired = reading.paired_sentences(study.top.metrics) if study.kind == "experiment" else []
    comp = None if paired else reading.comparison(heads)  # paired: the page's first sentence
    words += [comp] if comp else []
    items = "".join(f"<li>{esc(w)}</li>" for w in words)
    eps_note = (
        "" if any(h.eps_lb for h in heads) else " No ε lower bound was logged by these attacks."
    )
    return (
        '<section id="summary"><h2>Summary</h2>'
        f'<ul class="reading lead">{items}</ul>'
        + table(head, rows)
        + '<p class="muted">Accuracy intervals: exact binomial (Clopper–Pearson, 95%) on the '
        "evaluation members (train) and non-members (test). Strongest attack: the largest AUC "
        "among the attacks with per-sample scores; its AUC interval is DeLong's, Bonferroni-"
        "corrected over those attacks (simultaneous 95%), so choosing the maximum keeps the "
        "interval's confidence (the AUC itself is the maximum and biased upwards with many "
        "attacks). TPR intervals: the chosen attack's own (order-statistic Clopper–Pearson, "
        "not corrected for the choice). Placebo: the same attack against shadow model 0, a "
        "model trained like the target that never saw the evaluation members; it must sit at "
        "chance (simultaneous DeLong interval; warning from an exact-null Mann–Whitney test, "
        "Bonferroni over the placebo attacks). Paired comparison: target against the first "
        "target on the same samples, DeLong's paired ΔAUC with a simultaneous interval over "
        "the attacks and a Bonferroni p-value, ΔTPR@1% by paired bootstrap. Members are the "
        "positive class; AUC 0.5 is guessing. ε lower bound: held-out threshold, one-sided "
        f"Clopper–Pearson at the logged confidence (see the statistics page).{eps_note}"
        "</p></section>"
    )


def placebo_section(t: TargetData) -> str:
    """The placebo control of one target: every placebo attack's AUC, simultaneous interval,
    exact-null p-value (adjusted) and TPR at 1% FPR, beside the target's own AUC."""
    m = t.metrics
    names = sorted({p[0] for p in map(metric_keys.split_placebo, m) if p is not None})
    if not names:
        why = (
            "no shadow model 0 was trained (data.n_shadow too small, or no shadow data)"
            if m.get(metric_keys.placebo_fact("available")) == 0.0
            else "attack.placebo was off, or no score attack ran"
        )
        return "<h3>Placebo control</h3>" + missing(f"No placebo control: {why}.")
    rows = []
    for a in names:
        n = reading.placebo_number(t, a)
        own = t.attacks[a].metrics.get("auc") if a in t.attacks else None
        p = m.get(metric_keys.placebo(a, "chance_p_adjusted"))
        tpr = m.get(metric_keys.placebo(a, "tpr_at_fpr_0.01"))
        verdict = "NOT at chance" if m.get(metric_keys.placebo(a, "off_chance")) else "at chance"
        rows.append(
            f"<td>{esc(a)}</td>"
            + cell(own, metric_keys.attack(a, "auc") if own is not None else "", t.run.run_id)
            + cell(n.value if n else None, n.key if n else "", t.run.run_id) + ci(n)
            + cell(p, metric_keys.placebo(a, "chance_p_adjusted") if p is not None else "",
                   t.run.run_id)
            + cell(tpr, metric_keys.placebo(a, "tpr_at_fpr_0.01") if tpr is not None else "",
                   t.run.run_id)
            + f"<td>{verdict}</td>"
        )  # fmt: skip
    head = ["attack", "target AUC", "placebo AUC", "simultaneous CI", "p (chance, Bonferroni)",
            "placebo TPR @ 1% FPR", "reading"]  # fmt: skip
    return (
        "<h3>Placebo control</h3><p>The same attacks against shadow model 0, trained like the "
        "target on the shadow pool (disjoint from the evaluation members and non-members): "
        "they must sit at chance.</p>" + table(head, rows)
    )


def placebo_banner(study: Study) -> str:
    """First-screen warning naming every attack whose placebo is not at chance."""
    lines = [w for t in study.targets for w in reading.placebo_warnings(t.label, t.metrics)]
    if not lines:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in lines)
    return (
        '<div class="banner" role="alert"><strong>Placebo not at chance</strong>'
        f"<ul>{items}</ul></div>"
    )


def roc_section(study: Study) -> str:
    fig = roc_all(study.targets, "all attacks, log-log ROC")
    body = (
        figures({"log-log ROC of every attack": fig})
        if fig
        else missing("No per-sample attack scores were logged, so there is no ROC to draw.")
    )
    return f'<section id="roc"><h2>ROC, low false-positive regime</h2>{body}</section>'


def _metric_rows(t: TargetData, name: str) -> list[str]:
    m = t.attacks[name].metrics
    rows = []
    for k in sorted(m):
        if k.endswith(("_ci_low", "_ci_high")) or "slice" in k:
            continue
        n = Number(metric_keys.attack(name, k), m[k], m.get(f"{k}_ci_low"), m.get(f"{k}_ci_high"))
        rows.append(f"<td>{esc(k)}</td>" + cell(n.value, n.key, t.run.run_id) + ci(n))
    return rows


def _slices(t: TargetData, name: str) -> str:
    m = t.attacks[name].metrics
    keys = sorted(k for k in m if "slice" in k and not k.endswith(("_ci_low", "_ci_high")))
    if not keys:
        return missing(f"No slices logged for {name}.")
    rows = [
        f"<td>{esc(k)}</td>" + cell(m[k], metric_keys.attack(name, k), t.run.run_id)
        + ci(Number(k, m[k], m.get(f"{k}_ci_low"), m.get(f"{k}_ci_high")))
        for k in keys
    ]  # fmt: skip
    return f"<h4>{esc(name)}: slices</h4>" + table(["slice metric", "value", "CI"], rows)


def target_section(t: TargetData, i: int) -> str:
    run = t.run
    out = [
        f'<section id="target-{i}"><h2>{esc(t.label)}</h2>'
        f'<p class="muted">run <code>{esc(run.run_id)}</code> · {esc(run.name)} · '
        f"{esc(run.status)}</p>"
    ]
    own = [k for k in sorted(t.metrics) if not metric_keys.is_attack(k) and "/" in k]
    if own:
        rows = [f"<td>{esc(k)}</td>" + cell(t.metrics[k], k, run.run_id) for k in own]
        out.append("<h3>Model</h3>" + table(["metric", "value"], rows))
    if not t.attacks:
        out.append(missing("No attack metrics were logged for this run."))
    for name, a in t.attacks.items():
        out.append(f"<h3>Attack {esc(name)}</h3>")
        out.append(table(["metric", "value", "CI"], _metric_rows(t, name)))
        if a.images:
            out.append(figures(a.images, lambda p: p.removeprefix("plots/")))
        else:
            out.append(missing(f"No score histograms logged for {name}."))
        out.append(_slices(t, name))
    if t.attacks and t.run.tags.get("lit_mia.family") != "updates_leak":
        out.append(placebo_section(t))
    if t.images:
        out.append("<h3>Plots</h3>" + figures(t.images, lambda p: p.removeprefix("plots/")))
    out.append(updates_section(t))
    return "".join(out) + "</section>"


UPDATE_MAINS = ("acc", "mse", "kl")


def updates_section(t: TargetData) -> str:
    """Update leakage (Salem et al. USENIX Security'20): each attack's number beside the
    baselines it was logged with (`<metric>_<baseline>`)."""
    if t.run.tags.get("lit_mia.family") != "updates_leak":
        return ""
    rows = []
    for name, a in t.attacks.items():
        for main in UPDATE_MAINS:
            if main not in a.metrics:
                continue
            for k in [main, *sorted(k for k in a.metrics if k.startswith(main + "_"))]:
                if k.endswith(("_ci_low", "_ci_high")):
                    continue
                what = "attack" if k == main else "baseline " + k[len(main) + 1 :]
                rows.append(
                    f"<td>{esc(name)}</td><td>{esc(what)}</td><td>{esc(k)}</td>"
                    + cell(a.metrics[k], metric_keys.attack(name, k), t.run.run_id)
                )
    grids = {p: b for p, b in t.images.items() if "reconstruction" in p}
    body = (
        table(["attack", "row", "metric", "value"], rows)
        if rows
        else missing("No update-leakage metrics were logged.")
    )
    body += figures(grids) if grids else missing("No reconstruction grids were logged.")
    return f"<h3>Update leakage: attacks against their baselines</h3>{body}"


def sweep_section(study: Study) -> str:
    if study.kind != "sweep":
        return ""
    front = reading.pareto(study.trials, study.objectives)
    keys = [m for m, _ in study.objectives]
    params = sorted(
        {k for t in study.trials for k in t.params}
        - {k for k in study.trials[0].params if len({t.params.get(k) for t in study.trials}) == 1}
    ) if study.trials else []  # fmt: skip
    params = [p for p in params if p not in ("label",)]
    rows = []
    for t in study.trials:
        mark = '<span class="front">front</span>' if t.run_id in front else ""
        row = f"<td>{esc(t.name)}</td><td>{esc(t.status)}</td><td>{mark}</td>"
        row += "".join(f"<td>{esc(t.params.get(p, '–'))}</td>" for p in params)
        row += "".join(cell(t.metrics.get(k), k, t.run_id) for k in keys)
        rows.append(row)
    fig = pareto_plot(study.trials, study.objectives, front)
    obj = ", ".join(f"{m} ({d})" for m, d in study.objectives) or "not logged"
    return (
        '<section id="sweep"><h2>Sweep</h2>'
        f"<p>Objectives: {esc(obj)}. {len(front)} trial(s) on the Pareto front.</p>"
        + (
            figures({"Pareto front": fig})
            if fig
            else missing("No Pareto plot (needs 1-2 objectives and finished trials).")
        )
        + table(["trial", "status", "Pareto", *params, *keys], rows)
        + "</section>"
    )


def manifest_section(study: Study, manifest: dict[str, str], config_yaml: str) -> str:
    rows = [f"<th>{esc(k)}</th><td><code>{esc(v)}</code></td>" for k, v in manifest.items()]
    runs = [
        f"<td>{esc(t.label)}</td><td><code>{esc(t.run.run_id)}</code></td>"
        f"<td>{esc(t.split_hash or 'not logged')}</td>"
        for t in study.targets
    ]
    return (
        '<section id="manifest"><h2>Reproducibility manifest</h2>'
        + table(["item", "value"], rows, cls="manifest")
        + table(["target", "MLflow run id", "data split hash"], runs)
        + "<h3>Resolved config</h3><pre>"
        + esc(config_yaml or "not logged")
        + "</pre></section>"
    )


UNFINISHED = {
    "KILLED": "was interrupted (Ctrl-C or a signal) before it finished",
    "FAILED": "stopped with an error before it finished",
}


def unfinished_banner(study: Study) -> str:
    """First-screen warning for a top run that did not end FINISHED ("" when it did)."""
    status = study.top.status
    if status == "FINISHED":
        return ""
    why = UNFINISHED.get(status, "did not finish")
    error = study.top.tags.get("error", "")
    return (
        f'<div class="banner" role="alert"><strong>{esc(status)}:</strong> this run {why}; '
        "its results are incomplete and are not those of a finished experiment. "
        + (f"Error: <code>{esc(error[:300])}</code>. " if error else "")
        + "Rerun the experiment (see the manifest at the end) for a complete report.</div>"
    )


def page(study: Study, manifest: dict[str, str]) -> str:
    title = f"lit_mia report: {study.top.name}"
    paired = reading.paired_sentences(study.top.metrics) if study.kind == "experiment" else []
    answer = (
        f'<p class="lead"><strong>{esc(paired[0])}</strong></p>'
        + "".join(f'<p class="lead">{esc(s)}</p>' for s in paired[1:])
        if paired
        else "<p>How much does each model leak about its training members, and does robust "
        "training make it worse?</p>"
    )
    intro = (
        f"<h1>{esc(title)}</h1>{answer}"
        f'<p class="muted">{esc(study.kind)} · MLflow experiment '
        f"<code>{esc(study.experiment)}</code> · run <code>{esc(study.top.run_id)}</code> · "
        f"{len(study.targets)} target(s) · store <code>{esc(study.uri)}</code>. Tables sort by a "
        "click on their header.</p>"
    )
    parts = [
        intro,
        unfinished_banner(study),
        placebo_banner(study),
        summary(study),
        roc_section(study),
        sweep_section(study),
        *(target_section(t, i) for i, t in enumerate(study.targets)),
    ]
    if study.images:
        parts.append("<section><h2>Across targets</h2>" + figures(study.images) + "</section>")
    parts.append(manifest_section(study, manifest, study.texts.get("config.yaml", "")))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        + "".join(parts)
        + f"<script>{SORT_JS}</script></body></html>"
    )


__all__ = ["page"]

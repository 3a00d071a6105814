"""`lit-mia report`: the HTML study report read back from MLflow, and its bad-input errors.

The tiny two-target study (tests/helpers/tiny_study.py) is reported by experiment name and by
run id; every number the page marks with `data-key` must equal the logged MLflow metric. A
sweep and an update-leakage run are logged directly through lit_mia.tracking (real MLflow runs, no
training) to check the Pareto front and the baseline table against a direct computation.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from lit_mia import cli, tracking
from lit_mia.report_html import reading


class Cells(HTMLParser):
    """(data-key, data-run, data-value, text) of every cell carrying a logged metric."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list] = []
        self.current: list | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "td" and "data-key" in a:
            self.current = [a["data-key"], a["data-run"], a["data-value"], ""]
            self.cells.append(self.current)

    def handle_endtag(self, tag):
        if tag == "td":
            self.current = None

    def handle_data(self, data):
        if self.current is not None:
            self.current[3] += data


def cells(html: str) -> list[list]:
    p = Cells()
    p.feed(html)
    return p.cells


def report(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_of_the_tiny_study(tiny_study, tmp_path, capsys):
    out_file = tmp_path / "r" / "study.html"
    code, out, err = report(capsys, "default", *tiny_study.tracking, "-o", str(out_file))
    assert code == 0, err
    which, written = out.strip().splitlines()
    assert which.startswith("reporting run ")
    assert "FINISHED" in which
    assert written == f"report: {out_file.resolve()}"
    html = out_file.read_text()
    # self-contained: no URL to fetch at view time, images inline, network forbidden by CSP
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//)""", html)
    assert "default-src 'none'" in html
    assert 'src="data:image/png;base64,' in html

    client = MlflowClient(tiny_study.uri)
    exp = client.get_experiment_by_name("lit_mia/default")
    runs = client.search_runs([exp.experiment_id])
    by_id = {r.info.run_id: r for r in runs}
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    found = cells(html)
    assert len(found) > 40
    for key, run, value, text in found:  # every marked number is the logged metric
        logged = by_id[run].data.metrics[key]
        assert float(value) == logged, key
        assert text == f"{logged:.3f}", key
    shown = {(k, r) for k, r, _, _ in found}
    for c in children:
        for key in ("attack/ib/auc", "attack/ib/tpr_at_fpr_0.01", "target/train_acc"):
            assert (key, c.info.run_id) in shown
    # the summary: one sentence per target, the comparison, the manifest
    for label in ("natural", "pgd"):
        assert f"{label}: the strongest attack (ib)" in html
    # the first sentence: does PGD leak more than natural, from the logged paired comparison
    first = re.search(r"</h1><p class=\"lead\"><strong>(.*?)</strong>", html).group(1)
    assert re.match(
        r"(pgd leaks (more|less) membership than natural|This run cannot tell whether pgd "
        r"leaks more membership than natural)",
        first,
    ), first
    assert "DeLong paired test on the same 64 members and 64 non-members" in first
    logged = parent.data.metrics
    assert f"{logged['compare/pgd/natural/ib/delta_auc']:+.3f}" in first
    assert f"p = {logged['compare/pgd/natural/ib/delta_auc_p_adjusted']:.2g}" in first
    assert "leaks the most" not in html  # the old unpaired reading is gone
    assert "Placebo control" in html
    for c in children:  # every target ran its placebo, and it is reported beside it
        assert ("placebo/ib/auc", c.info.run_id) in shown
    assert parent.data.tags["git_sha"] in html
    assert "sha256:" in html
    assert "lit-mia run default" in html
    assert "attacks=" in html
    # logged on the parent run
    arts = [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert "report/study.html" in arts  # (the browser test logs its screenshot beside it)


def test_report_by_run_id_is_one_target(tiny_study, tmp_path, capsys):
    client = MlflowClient(tiny_study.uri)
    exp = client.get_experiment_by_name("lit_mia/default")
    child = next(
        r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags
    )
    code, out, err = report(capsys, child.info.run_id, *tiny_study.tracking)
    assert code == 0, err
    out_file = Path(out.strip().splitlines()[-1].removeprefix("report: "))  # beside the store
    name = f"{child.info.run_name.replace('/', '_')}-{child.info.run_id[:8]}.html"
    assert out_file == tiny_study.folder / "mlruns" / "reports" / name
    html = out_file.read_text()
    label = child.data.tags["lit_mia.label"]
    assert f"{label}: the strongest attack" in html
    assert "leaks the most" not in html
    assert {r for _, r, _, _ in cells(html)} == {child.info.run_id}


def _one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    for n in needles:
        assert n in err, err


def test_report_bad_input(tiny_study, tmp_path, capsys):
    tr = tiny_study.tracking
    code, _, err = report(capsys, "nosuch", *tr)
    _one_line_error(code, err, "'nosuch'", "experiments: lit_mia/default", "sweeps: none")
    code, _, err = report(capsys, "0" * 32, *tr)
    _one_line_error(code, err, "unknown run id")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = report(capsys, "default", *tr, "-o", str(blocker / "r.html"))
    _one_line_error(code, err, "cannot write the report to", str(blocker / "r.html"))
    code, _, err = report(capsys, "default", f"tracking.uri=sqlite:///{tmp_path}/none/m.db")
    _one_line_error(code, err, "no MLflow store at")
    assert not (tmp_path / "none").exists()


def test_report_refuses_a_running_run(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = tracking.client_for(uri)
    exp = tracking.experiment_id(client, "busy", tracking.resolve_uri(uri)[1])
    run = client.create_run(exp, run_name="busy")  # left RUNNING, as a live `lit-mia run`
    code, _, err = report(capsys, "busy", f"tracking.uri={uri}")
    _one_line_error(code, err, run.info.run_id, "still RUNNING")


def _log_sweep(uri: str, values: list[tuple[float, float]]) -> list[str]:
    """A sweep parent and one finished trial run per (auc, test_acc) pair; returns trial ids."""
    ids = []
    tags = {"lit_mia.study": "tiny-study", "lit_mia.sweep": "tiny", "seed": "0"}
    with tracking.Run(uri, "single", "sweep/tiny-study", tags=tags) as parent:
        parent.log_params({"sweep.objectives": "attack/ib/auc:minimize,target/test_acc:maximize"})
        for i, (auc, acc) in enumerate(values):
            with tracking.Run(
                uri, "single", f"tiny-study/trial-{i}", parent_run_id=parent.run_id
            ) as t:
                t.log_params({"target.eps": str(0.05 * i), "seed": "0"})
                t.log_metrics({"attack/ib/auc": auc, "target/test_acc": acc})
                ids.append(t.run_id)
    return ids


def test_sweep_report_pareto_front(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    rng = np.random.default_rng(0)
    values = [(float(a), float(b)) for a, b in rng.uniform(0.4, 0.9, size=(7, 2))]
    ids = _log_sweep(uri, values)
    out_file = tmp_path / "sweep.html"
    code, _, err = report(capsys, "tiny", f"tracking.uri={uri}", "-o", str(out_file))
    assert code == 0, err
    html = out_file.read_text()
    # brute force: i is on the front iff no j has auc_j <= auc_i, acc_j >= acc_i, one strict
    front = {
        ids[i]
        for i, (a, b) in enumerate(values)
        if not any(
            (c <= a and d >= b) and (c < a or d > b) for j, (c, d) in enumerate(values) if j != i
        )
    }
    client = MlflowClient(uri)
    trials = [tracking._stored(client.get_run(i)) for i in ids]
    objectives = [("attack/ib/auc", "minimize"), ("target/test_acc", "maximize")]
    assert front
    assert reading.pareto(trials, objectives) == front
    rows = re.findall(r"<tr><td>(tiny-study/trial-\d+)</td><td>FINISHED</td><td>(.*?)</td>", html)
    marked = {name for name, mark in rows if "front" in mark}
    assert marked == {f"tiny-study/trial-{ids.index(i)}" for i in front}
    assert "Objectives: attack/ib/auc (minimize), target/test_acc (maximize)" in html
    assert "lit-mia sweep tiny" in html
    # the sweep is found by its study name too
    assert report(capsys, "tiny-study", f"tracking.uri={uri}", "-o", str(out_file))[0] == 0


def test_update_leakage_baseline_table(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tags = {"lit_mia.family": "updates_leak", "lit_mia.experiment": "updates_leak_single"}
    metrics = {"attack/a_li/acc": 0.61, "attack/a_li/acc_random": 0.1, "attack/a_li/acc_rule": 0.3}
    with tracking.Run(uri, "updates_leak", "updates_leak_single", tags=tags) as run:
        run.log_metrics(metrics)
    out_file = tmp_path / "u.html"
    code, _, err = report(capsys, "updates_leak", f"tracking.uri={uri}", "-o", str(out_file))
    assert code == 0, err
    html = out_file.read_text()
    assert "Update leakage: attacks against their baselines" in html
    assert "baseline random" in html
    assert "baseline rule" in html
    assert {k: float(v) for k, _, v, _ in cells(html)} == metrics
    assert "No reconstruction grids were logged." in html
    assert "No per-sample attack scores were logged" in html


def test_experiment_names_cannot_be_confused_with_default(tiny_study):
    assert tracking.mlflow_experiment("default") == "lit_mia/default"
    assert tracking.mlflow_experiment("lit_mia/x") == "lit_mia/x"
    names = {e.name: e for e in MlflowClient(tiny_study.uri).search_experiments()}
    assert "lit_mia/default" in names
    assert "default" not in names
    kind = names["lit_mia/default"].tags["mlflow.experimentKind"]
    assert kind == "custom_model_development"  # the UI opens on the runs table
    assert b"MLflow: experiment 'lit_mia/default'" in tiny_study.stdout
    assert Path(tiny_study.folder / "mlruns" / "mlflow.db").is_file()

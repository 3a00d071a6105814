"""The study report and the MLflow UI in a real browser: Debian's headless Chromium driven by
Playwright (Playwright cannot download its own browser here; `.ci/run` installs `chromium`).

`RunIf(chromium=True)`: outside CI (LIT_MIA_CI unset) the tests skip with one line when no
browser is installed; in CI a missing browser fails them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from lit_mia.report_html import build_report
from tests.helpers.runif import CHROMIUM, RunIf

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


pytestmark = RunIf(chromium=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def watched_page(browser, errors: list[str], viewport=(1280, 900)):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def test_report_renders_in_chromium(tiny_study, browser, tmp_path):
    path = build_report("default", tiny_study.tracking, str(tmp_path / "report.html"))
    errors: list[str] = []
    requests: list[str] = []
    page = watched_page(browser, errors)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    assert page.title() == "lit_mia report: default"
    # every number marked with a metric key is the logged MLflow metric, as rendered
    client = MlflowClient(tiny_study.uri)
    cells = page.locator("td[data-key]")
    n = cells.count()
    assert n > 40
    runs = {}
    for i in range(n):
        c = cells.nth(i)
        key, run_id = c.get_attribute("data-key"), c.get_attribute("data-run")
        runs.setdefault(run_id, client.get_run(run_id).data.metrics)
        logged = runs[run_id][key]
        assert float(c.get_attribute("data-value")) == logged
        assert c.inner_text().strip() == f"{logged:.3f}"
    summary = page.locator("#summary")
    for run_id, m in runs.items():
        if "attack/ib/auc" in m:  # each target's AUC is visible in the summary table
            cell = summary.locator(f'td[data-key="attack/ib/auc"][data-run="{run_id}"]')
            assert cell.is_visible()
            assert cell.inner_text() == f"{m['attack/ib/auc']:.3f}"
    # sorting by a header click reorders rows without errors
    head = summary.locator("th", has_text="AUC").first
    head.click()
    assert "sorted-asc" in (head.get_attribute("class") or "")
    values = [float(v) for v in summary.locator('td[data-key="attack/ib/auc"]').evaluate_all(
        "cs => cs.map(c => c.dataset.value)")]  # fmt: skip
    assert values == sorted(values)
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # no network
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    parent = next(
        r
        for r in client.search_runs(
            [client.get_experiment_by_name("lit_mia/default").experiment_id]
        )
        if "mlflow.parentRunId" not in r.data.tags
    )
    client.log_artifact(parent.info.run_id, str(shot), "report")  # kept beside the report
    assert "report/report.png" in {
        a.path for a in client.list_artifacts(parent.info.run_id, "report")
    }
    page.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ROW_VALUES = """(name) => {
  // the compare view's metric grid is virtualised: names and values are separate grids whose
  // rows need not line up on screen (seen rows apart), so take every number on the screen
  // once the metric's name is scrolled into view
  const a = [...document.querySelectorAll('a')].find(e => e.textContent.trim() === name);
  if (!a) return [];
  return [...document.querySelectorAll('body *')]
    .filter(e => e.children.length === 0
      && /^-?[0-9]*[.]?[0-9]+(e-?[0-9]+)?$/.test(e.textContent.trim()))
    .filter(e => { const b = e.getBoundingClientRect(); return b.height > 0
      && b.bottom <= window.innerHeight; })
    .map(e => e.textContent.trim());
}"""


def test_mlflow_ui_runs_table_and_compare_view(tiny_study, browser, tmp_path):
    client = MlflowClient(tiny_study.uri)
    exp = client.get_experiment_by_name("lit_mia/default")
    children = [
        r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags
    ]
    assert len(children) == 2
    port = _free_port()
    log = open(tmp_path / "mlflow_ui.log", "w")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tiny_study.uri,
           "--default-artifact-root", str(tiny_study.folder / "mlruns" / "artifacts"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    # own process group: `mlflow ui` runs uvicorn as a child, which must not outlive the test
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "mlflow_ui.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "mlflow ui did not start"
                time.sleep(0.5)
        errors: list[str] = []
        page = watched_page(browser, errors, (1400, 900))
        # the runs table: the link `make ui` prints opens MLflow 3 on "Model training" (not
        # the GenAI traces view) and the experiment (mlflow.experimentKind) on its runs
        assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
        page.goto(f"{base}/#/experiments/{exp.experiment_id}?workflowType=machine_learning")
        parent_name = next(
            r.info.run_name
            for r in client.search_runs([exp.experiment_id])
            if "mlflow.parentRunId" not in r.data.tags
        )
        page.get_by_role("link", name=parent_name, exact=True).first.wait_for(timeout=120_000)
        assert "/runs" in page.url
        assert page.get_by_text("lit_mia/default").first.is_visible()
        # as the README says: expand the parent, tick the two child runs, press Compare
        name_cell = '[role=gridcell][col-id="attributes.`Run Name`"]'
        page.locator(name_cell, has_text=parent_name).first.locator("button").first.click()
        for r in children:
            link = page.get_by_role("link", name=r.info.run_name, exact=True).first
            link.wait_for(timeout=60_000)
            row = link.evaluate("e => e.closest('[role=row]').getAttribute('row-index')")
            page.locator(f'[role=row][row-index="{row}"] input.ag-checkbox-input').first.check()
        page.get_by_role("button", name="Compare").first.click()
        page.wait_for_url("**/compare-runs?**", timeout=60_000)
        assert all(r.info.run_id in page.url for r in children)
        for r in children:
            page.get_by_text(r.info.run_name, exact=True).first.wait_for(timeout=120_000)
        name = page.get_by_text("attack/ib/auc", exact=True).first
        name.wait_for(timeout=60_000)
        name.scroll_into_view_if_needed()
        assert name.is_visible()

        def on_row(shown, v):  # a logged value shown on the row, as rounded by the UI
            return any(abs(x - v) <= 0.5 * 10**-d + 1e-12 for x, d in shown)

        logged = [r.data.metrics["attack/ib/auc"] for r in children]
        deadline = time.monotonic() + 60  # the virtualised value grid may draw after the names
        while True:
            shown = [
                (float(t), len(t.partition(".")[2]))
                for t in page.evaluate(ROW_VALUES, "attack/ib/auc")
            ]
            if all(on_row(shown, v) for v in logged):
                break
            assert time.monotonic() < deadline, (logged, shown)  # each run's logged AUC
            page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "mlflow_compare.png"))
        page.close()
        # the UI's own 404s for optional endpoints (e.g. the GenAI assistant) are not ours
        assert not [e for e in errors if "404" not in e], errors
    finally:
        _stop_group(server)
        log.close()


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group of `proc` (mlflow ui and its uvicorn), SIGKILL after 20 s."""
    import signal

    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue

"""`lit-mia reproduce` end to end: --list, usage errors (exit 2), the quick tier through the
normal experiment path into the HTML / JSON / Markdown report, and an unmeetable band (exit 1)."""

from __future__ import annotations

import json

import pytest

from lit_mia import cli
from lit_mia.reproduce.claims import all_claims, load_papers, select
from tests.conftest import client_for, store_uri

UPDATES_TINY = [
    "updates.m_shadow=24", "updates.m_target=8", "updates.base_size=64", "updates.base_epochs=1",
    "updates.shadow_pool=100", "updates.target_pool=100", "updates.n_probe=10",
    "updates.batch_size=16", "net.width=0.5", "updates.li.epochs=1", "updates.ssr.epochs=1",
    "updates.ssr.ae_epochs=1", "updates.ssr.n_grid=2",
]  # fmt: skip


def isolated(tmp_path) -> list[str]:
    """Every store and cache of the runs under tmp_path."""
    return [
        f"tracking.uri={store_uri(tmp_path)}",
        f"updates.cache_dir={tmp_path}/cache/updates",
        f"attack.lira.cache_dir={tmp_path}/cache/shadow_farm",
    ]


def test_list_shows_every_claim(capsys):
    assert cli.main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    claims = all_claims(load_papers())
    assert len(claims) >= 12
    for c in claims:
        assert c.id in out
        assert c.command() in out


def test_list_quick_tier(capsys):
    assert cli.main(["reproduce", "--list", "--tier", "quick"]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line[:1] != " "]
    assert ids == [c.id for c in select(load_papers(), [], "quick")]


def test_unknown_claim_exits_2_listing_valid_ones(capsys):
    assert cli.main(["reproduce", "no-such-claim"]) == 2
    err = capsys.readouterr().err
    assert "unknown claim(s) no-such-claim" in err
    assert "ccs19-pgd-leaks-more" in err
    assert "rmia-not-worse-than-lira" in err


def test_bad_tier_exits_2(capsys):
    assert cli.main(["reproduce", "--tier", "gpu"]) == 2
    assert "--tier must be one of quick, cpu, paper" in capsys.readouterr().err


def test_bad_override_exits_2_before_training(tmp_path, capsys):
    assert cli.main(["reproduce", "--tier", "quick", "trainer.max_epochz=1"]) == 2
    assert "max_epochz" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce_quick")
    html, md = tmp / "quick.html", tmp / "quick.md"
    rc = cli.main(["reproduce", "--tier", "quick", "-o", str(html), "--markdown", str(md),
                   *isolated(tmp)])  # fmt: skip
    return rc, tmp, html, md


def test_quick_tier_end_to_end(quick):
    rc, tmp, html, md = quick
    data = json.loads(html.with_suffix(".json").read_text())
    ids = [c.id for c in select(load_papers(), [], "quick")]
    assert [c["id"] for c in data["claims"]] == ids
    verdicts = {c["verdict"] for c in data["claims"]}
    assert verdicts <= {"reproduced", "not reproduced"}
    assert rc == (1 if "not reproduced" in verdicts else 0)
    page = html.read_text()
    runs = {r.info.run_id: r for r in client_for(tmp).search_runs(
        [e.experiment_id for e in client_for(tmp).search_experiments()])}  # fmt: skip
    for c in data["claims"]:
        assert c["id"] in page
        assert c["value"] is not None, c  # every quick claim is measurable
        assert c["low"] <= c["high"], c
        assert c["interval"], c
        assert c["runs"], c["id"]
        for rid in c["runs"].values():
            assert rid in page  # linked (first 8 characters shown, the id in the href)
            assert runs[rid].info.status == "FINISHED"
    assert page.count('class="pass"') + page.count('class="fail"') == len(ids)
    text = md.read_text()
    assert text.startswith("# Reproduction of the papers' findings")
    assert all(f"`{i}`" in text for i in ids)
    assert all(c["interval"] in text for c in data["claims"])  # how each interval was formed
    paired = next(c for c in data["claims"] if c["id"] == "lira-beats-global-threshold-auc")
    assert paired["interval"].startswith("paired (DeLong) on the same")  # two attacks, one target
    # where it ran: the commit the runs were tagged with, the cores, the torch threads
    where = data["machine"]
    tagged = {r.data.tags.get("git_sha", where["commit"]) for r in runs.values()}
    assert tagged == {where["commit"]}
    assert where["cores"] >= 1
    assert where["torch_threads"] >= 1
    assert f"commit {where['commit'][:12]}" in text
    assert f"{where['cores']} cores" in text
    assert f"commit {where['commit'][:12]}" in page


def test_unmeetable_band_is_not_reproduced_and_exits_1(tmp_path, capsys):
    folder = tmp_path / "claims"
    folder.mkdir()
    (folder / "x.yaml").write_text(
        "paper: {id: x, title: T, venue: V}\nclaims:\n"
        "  - id: x-impossible\n    finding: f\n    paper_value: v\n    source: s\n"
        "    experiment: updates_leak_single\n"
        f"    overrides: {json.dumps(UPDATES_TINY)}\n"
        "    statistic: {a: {target: updates, key: attack/a_li/acc}}\n"
        "    interval: binomial\n    n_key: updates.m_target\n"
        "    band: {direction: above, value: 1.0}\n",
        encoding="utf-8",
    )
    out = tmp_path / "r.html"
    rc = cli.main(["reproduce", "--claims", str(folder), "-o", str(out), *isolated(tmp_path)])
    assert rc == 1
    (c,) = json.loads(out.with_suffix(".json").read_text())["claims"]
    assert c["verdict"] == "not reproduced"
    assert c["high"] <= 1.0
    assert "not reproduced" in capsys.readouterr().out


def test_from_store_judges_the_stored_runs_again(quick, tmp_path):
    """--from-store trains nothing and finds the quick tier's runs by their config: the same
    values and verdicts; a claim without a stored run is "not run" (exit 1)."""
    rc, tmp, html, _ = quick
    again = tmp_path / "again.html"
    assert cli.main(["reproduce", "--tier", "quick", "--from-store", "-o", str(again),
                     *isolated(tmp)]) == rc  # fmt: skip
    first = json.loads(html.with_suffix(".json").read_text())["claims"]
    second = json.loads(again.with_suffix(".json").read_text())["claims"]
    assert [(c["id"], c["value"], c["verdict"], c["runs"]) for c in first] == [
        (c["id"], c["value"], c["verdict"], c["runs"]) for c in second
    ]
    empty = tmp_path / "empty"
    assert cli.main(["reproduce", "--tier", "quick", "--from-store", "usenix20-ali-beats-majority",
                     "-o", str(empty / "r.html"), *isolated(empty)]) == 1  # fmt: skip
    (c,) = json.loads((empty / "r.json").read_text())["claims"]
    assert c["verdict"] == "not run"
    assert "no FINISHED run" in c["reason"]

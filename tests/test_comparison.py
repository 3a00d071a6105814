"""The paired comparison across the targets of one experiment (comparison.paired_keys, logged
on the parent run), checked on the session's tiny natural-vs-PGD study against a direct
recomputation from the two children's logged score files; the CLI prints its reading."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from lit_mia import comparison
from lit_mia.metrics import keys, paired
from lit_mia.tracking import TargetResult


def _scores(client, run_id, tmp_path):
    path = client.download_artifacts(run_id, "scores/ib.csv", str(tmp_path))
    rows = np.genfromtxt(path, delimiter=",", names=True)
    return rows["index"].astype(int), rows["is_member"].astype(int), rows["score"]


def test_logged_paired_comparison_is_the_recomputed_one(tiny_study, tmp_path):
    client = MlflowClient(tiny_study.uri)
    exp = client.get_experiment_by_name("lit_mia/default")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    kids = {r.data.tags["lit_mia.label"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    nat = _scores(client, kids["natural"].info.run_id, tmp_path / "n")
    pgd = _scores(client, kids["pgd"].info.run_id, tmp_path / "p")
    sa, sb, m = paired.align(*nat, *pgd)
    assert m.sum() == 64
    assert (~m).sum() == 64  # the two targets share the split: every sample pairs
    want = paired.paired_comparison(sa, sb, m, seed=0)
    logged = parent.data.metrics
    for k, v in want.items():
        assert logged[keys.compare("pgd", "natural", "ib", k)] == pytest.approx(v, abs=1e-9), k
    # one attack compared: the Bonferroni adjustment is the identity
    p = logged["compare/pgd/natural/ib/delta_auc_p_adjusted"]
    assert p == pytest.approx(want["delta_auc_p"])
    out = tiny_study.stdout.decode()
    assert "membership than natural" in out
    assert f"ΔAUC {want['delta_auc']:+.3f} with attack ib" in out


def test_paired_keys_pair_only_common_samples_and_skip_lone_targets():
    rng = np.random.default_rng(0)
    idx = np.arange(40)
    mem = (idx < 20).astype(int)
    a = TargetResult("natural", "a", scores={"ib": (idx, mem, rng.normal(size=40))})
    b = TargetResult("pgd", "b", scores={"ib": (idx[::-1], mem[::-1], rng.normal(size=40))})
    out = comparison.paired_keys({"natural": a, "pgd": b})
    assert out["pgd"]["compare/pgd/natural/ib/n_members"] == 20
    assert comparison.paired_keys({"natural": a}) == {}
    c = TargetResult("other", "c", scores={"ib": (idx + 100, mem, rng.normal(size=40))})
    assert comparison.paired_keys({"natural": a, "other": c}) == {"other": {}}  # nothing shared
    table = comparison.paired_table(out)
    assert table.splitlines()[2].startswith("| pgd vs natural | ib | ")

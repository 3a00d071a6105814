"""The shipped claims files: complete, valid against the config schema and the metric keys in
every tier, one quick claim per paper; malformed claims fail with the claim named."""

from __future__ import annotations

import pytest

from lit_mia.errors import ConfigError
from lit_mia.reproduce import claims as cl

SEED_PAPERS = {"ccs19", "ccs21", "usenix20", "lira", "rmia"}


@pytest.fixture(scope="module")
def papers():
    return cl.load_papers()


def test_claims_cover_the_five_papers(papers):
    claims = cl.all_claims(papers)
    assert len(claims) >= 12
    assert {p.id for p in papers} == SEED_PAPERS
    assert all(len(p.claims) >= 2 for p in papers)
    assert len({c.id for c in claims}) == len(claims)


def test_one_quick_claim_per_paper(papers):
    quick = cl.select(papers, [], "quick")
    assert sorted(c.paper for c in quick) == sorted(SEED_PAPERS)


@pytest.mark.parametrize("tier", cl.TIERS)
def test_every_claim_resolves_in_every_tier(papers, tier):
    """Experiment, overrides, targets and metric keys exist (config.per_target, keys)."""
    for c in cl.select(papers, [], tier):
        cl.validate_claim(c, tier)


def test_paper_tier_is_at_paper_scale(papers):
    for c in cl.all_claims(papers):
        assert any(o.startswith("trainer.name=gpu") for o in c.paper_tier), c.id
        data = [o for o in c.paper_tier if o.startswith("data.name=")]
        assert data, c.id
        assert data[0] != "data.name=mnist5k", c.id


def test_unknown_claim_lists_the_valid_ones(papers):
    with pytest.raises(ConfigError, match=r"unknown claim.*nope.*valid: ccs19-pgd-leaks-more"):
        cl.select(papers, ["nope"], "cpu")


def test_bad_tier(papers):
    with pytest.raises(ConfigError, match="--tier must be one of quick, cpu, paper"):
        cl.select(papers, [], "huge")


def _write(tmp_path, claim: str) -> None:
    (tmp_path / "p.yaml").write_text(
        "paper: {id: p, title: T, venue: V}\nclaims:\n" + claim, encoding="utf-8"
    )


GOOD = """  - id: c1
    finding: f
    paper_value: v
    source: Table 1
    experiment: default
    overrides: [attack.calibrate=false]
    statistic:
      a: {target: pgd, key: attack/ia/auc}
      b: {target: natural, key: attack/ia/auc}
    band: {direction: above, value: 0.0}
"""


def test_a_good_claims_file_validates(tmp_path):
    _write(tmp_path, GOOD)
    (p,) = cl.load_papers(tmp_path)
    cl.validate_claim(p.claims[0], "cpu")
    assert p.claims[0].command() == "lit-mia run default attack.calibrate=false"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("experiment: default", "experiment: nosuch"), "claim c1 .*nosuch"),
        (("attack.calibrate=false", "attack.calibratee=false"), "claim c1 .*calibratee"),
        (("target: pgd,", "target: dual,"), "claim c1 .*target 'dual' is not one of"),
        (("attack/ia/auc}\n      b", "target/test_acc}\n      b"), "not an attack metric key"),
        (("attack/ia/auc}\n      b", "attack/lira/auc}\n      b"), "attack 'lira' not in attacks"),
        (("direction: above", "direction: up"), "band.direction must be one of"),
        (("    source: Table 1\n", ""), "claim c1: missing 'source'"),
        (("    source: Table 1\n", "    source: T\n    colour: red\n"), r"unknown field\(s\)"),
    ],
)
def test_malformed_claims_name_the_claim(tmp_path, change, message):
    _write(tmp_path, GOOD.replace(*change))

    def load_and_validate():
        for p in cl.load_papers(tmp_path):
            for c in p.claims:
                cl.validate_claim(c, "cpu")

    with pytest.raises(ConfigError, match=message):
        load_and_validate()


def test_target_by_position():
    assert cl.resolve_target("1", ["a", "b"]) == "b"
    assert cl.resolve_target("a", ["a", "b"]) == "a"
    with pytest.raises(ConfigError, match="out of range"):
        cl.resolve_target("2", ["a", "b"])


def test_duplicate_ids_and_bad_yaml(tmp_path):
    _write(tmp_path, GOOD)
    (tmp_path / "q.yaml").write_text(
        "paper: {id: q, title: T, venue: V}\nclaims:\n" + GOOD, encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="claim id c1 appears in p and q"):
        cl.load_papers(tmp_path)
    (tmp_path / "q.yaml").write_text("claims: [a, b", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"q\.yaml: not valid YAML"):
        cl.load_papers(tmp_path)

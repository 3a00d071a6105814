"""lit_mia.models.cache.ModelCache: hit on identical fields, miss on any changed field (the
stale-model bug of LeakPro #234 / #415), atomic writes, ConfigError for an unwritable directory."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lit_mia.errors import ConfigError
from lit_mia.models import cache as cache_mod
from lit_mia.models.cache import ModelCache, canonical_json

BASE = {
    "dataset": "mnist5k",
    "train_idx": np.arange(0, 200, 2, dtype=np.int64),
    "target": {"name": "pgd", "eps": 0.1, "steps": 8, "step_size": 0.02, "lr": 0.001},
    "net": {"name": "mlp", "width": 0.5, "depth": None},
    "seed": 7,
    "index": 3,
    "epochs": 20,
    "farm_version": 1,
}


def changed_fields() -> list[tuple[str, dict]]:
    """One variant of BASE per field, each differing in exactly one place."""
    out = []
    for key, new in [
        ("dataset", "digits"),
        ("seed", 8),
        ("index", 4),
        ("epochs", 21),
        ("farm_version", 2),
    ]:
        out.append((key, {**copy.deepcopy(BASE), key: new}))
    idx = BASE["train_idx"].copy()
    idx[-1] += 1  # one split index changed
    out.append(("train_idx", {**copy.deepcopy(BASE), "train_idx": idx}))
    out.append(("train_idx-dtype", {**copy.deepcopy(BASE), "train_idx": idx.astype(np.int32)}))
    for k, v in [("eps", 0.1000001), ("steps", 7), ("name", "natural"), ("lr", 1e-3 * 1.5)]:
        f = copy.deepcopy(BASE)
        f["target"][k] = v
        out.append((f"target.{k}", f))
    f = copy.deepcopy(BASE)
    f["net"]["width"] = 0.25
    out.append(("net.width", f))
    f = copy.deepcopy(BASE)
    f["net"]["depth"] = 2
    out.append(("net.depth", f))
    f = copy.deepcopy(BASE)
    f["epochs"] = 20.0  # int vs float: never conflated
    out.append(("epochs-float", f))
    f = copy.deepcopy(BASE)
    f["extra"] = True  # a field added
    out.append(("added", f))
    f = copy.deepcopy(BASE)
    del f["seed"]  # a field dropped
    out.append(("dropped", f))
    return out


def tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(4, 3, generator=g), "b": torch.arange(3.0)}


def test_hit_on_identical_fields(tmp_path) -> None:
    c = ModelCache(tmp_path, "shadow")
    assert c.load(BASE) is None
    entry = c.save(BASE, tensors())
    assert entry.parent == tmp_path / "shadow" and (entry / "fields.json").is_file()
    same = {k: copy.deepcopy(BASE[k]) for k in reversed(list(BASE))}  # other key order, copies
    got = ModelCache(tmp_path, "shadow").load(same)  # a new cache object on the same dir
    assert got is not None and set(got) == {"w", "b"}
    for k, v in tensors().items():
        assert torch.equal(got[k], v)
    assert not [p for p in entry.iterdir() if p.name.endswith(".tmp")]  # atomic, no leftovers


@pytest.mark.parametrize(("what", "fields"), changed_fields(), ids=[w for w, _ in changed_fields()])
def test_miss_on_any_changed_field(tmp_path, what, fields) -> None:
    c = ModelCache(tmp_path, "shadow")
    c.save(BASE, tensors())
    assert ModelCache.key(fields) != ModelCache.key(BASE), what
    assert c.load(fields) is None, what
    assert c.load(BASE) is not None


def test_kind_separates_entries(tmp_path) -> None:
    ModelCache(tmp_path, "lira_shadow").save(BASE, tensors())
    assert ModelCache(tmp_path, "updates_leak").load(BASE) is None


def test_stored_fields_must_match_exactly(tmp_path) -> None:
    """An entry whose fields.json differs from the request (a collision, a hand edit) is a
    miss; so is a truncated weights file."""
    c = ModelCache(tmp_path, "shadow")
    entry = c.save(BASE, tensors())
    (entry / "fields.json").write_text(canonical_json({**BASE, "seed": 99}))
    assert c.load(BASE) is None
    entry = c.save(BASE, tensors())
    assert c.load(BASE) is not None
    (entry / "tensors.pt").write_bytes(b"not a torch file")
    assert c.load(BASE) is None


def test_format_version_is_part_of_the_key(monkeypatch) -> None:
    k = ModelCache.key(BASE)
    monkeypatch.setattr(cache_mod, "FORMAT_VERSION", cache_mod.FORMAT_VERSION + 1)
    assert ModelCache.key(BASE) != k


def test_code_version_is_part_of_the_key(tmp_path, monkeypatch, caplog) -> None:
    """A model cached by older training code is never served to newer code (issue 12 defect
    4), and the miss says which field changed."""
    c = ModelCache(tmp_path, "shadow")
    c.save(BASE, tensors())
    assert c.load(BASE) is not None
    old = cache_mod.code_version()
    monkeypatch.setattr(cache_mod, "code_version", lambda: {**old, "source_sha256": "0" * 64})
    with caplog.at_level("WARNING", logger="lit_mia.models.cache"):
        assert c.load(BASE) is None
    assert "code.source_sha256" in caplog.text and "shadow" in caplog.text
    assert c.explain_miss(BASE) == ["code.source_sha256"]


def test_source_hash_follows_training_code_only(tmp_path, monkeypatch) -> None:
    """Editing a training module changes the code version; editing a module outside
    TRAINING_SOURCES (plots) does not."""
    import shutil

    pkg = tmp_path / "lit_mia"
    shutil.copytree(cache_mod.PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_mod, "PACKAGE_DIR", pkg)

    def version() -> str:
        cache_mod.code_version.cache_clear()
        return cache_mod.code_version()["source_sha256"]

    try:
        v0 = version()
        (pkg / "plots.py").write_text((pkg / "plots.py").read_text() + "\n# edit\n")
        assert version() == v0
        f = pkg / "targets" / "adversarial.py"
        f.write_text(f.read_text() + "\n# edit\n")
        v1 = version()
        assert v1 != v0
        f = pkg / "models" / "update_farm.py"  # the update farm, moved out of updates_leak/
        f.write_text(f.read_text() + "\n# edit\n")
        assert version() != v1
        shutil.rmtree(pkg / "perturb")  # a listed source that is gone fails, never drops out
        with pytest.raises(FileNotFoundError, match="perturb"):
            version()
    finally:
        cache_mod.code_version.cache_clear()


def test_miss_names_the_differing_fields_of_the_nearest_entry(tmp_path, caplog) -> None:
    c = ModelCache(tmp_path, "shadow")
    assert c.explain_miss(BASE) == []  # nothing cached: a plain miss, no warning
    c.save(BASE, tensors())
    c.save({**BASE, "seed": 1, "epochs": 1, "index": 0}, tensors())
    other = {**copy.deepcopy(BASE), "seed": 8}
    other["target"]["eps"] = 0.2
    with caplog.at_level("WARNING", logger="lit_mia.models.cache"):
        assert c.load(other) is None
    assert c.explain_miss(other) == ["fields.seed", "fields.target.eps"]
    assert "fields.seed, fields.target.eps" in caplog.text


def test_unrepresentable_field_is_an_error() -> None:
    with pytest.raises(TypeError):
        ModelCache.key({"f": object()})


def test_unwritable_dir_is_a_config_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a directory is needed: fails even as root
    with pytest.raises(ConfigError, match="attack.lira.cache_dir"):
        ModelCache(blocker / "cache", "shadow")
    with pytest.raises(ConfigError, match="updates.cache_dir"):
        ModelCache(blocker, "shadow", key_name="updates.cache_dir")

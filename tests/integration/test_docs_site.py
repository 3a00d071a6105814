"""The documentation site builds, covers the package, and the docs point at things that exist.

- `mkdocs build --strict` (mkdocs.yml) succeeds offline: any warning fails it, among them a
  broken link or anchor between pages, a page missing from the navigation, or a generated
  reference page that lost what it documents (docs/_scripts/gen_reference.py raises). The
  built site has an API page for every module of lit_mia/, every key of the config schema on
  the settings page and every registered attack and regime on their pages.
- Paths that README.md and docs/**/*.md name (`lit_mia/...py`, `conf/...yaml`, `bench/...py`,
  `examples/...`) exist, so a module move shows up here; test files are named without their
  folder (`test_golden.py`) and must exist somewhere under tests/.
- Code, tests, benches, configs and examples cite pages of docs/ that exist, never the design
  notes outside the repository (DESIGN.md / REFERENCE.md).
- README.md stays an overview (at most 250 lines); CHANGELOG.md keeps the Keep a Changelog
  shape.
- .pre-commit-config.yaml runs the ruff version pinned in pyproject.toml (the one installed
  here) over the Makefile's LINT_PATHS.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lit_mia"
CITING = ("lit_mia", "tests", "bench", "conf", "examples")


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append(".".join(parts))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stderr[-4000:]}"
    return out


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page (tags dropped, entities decoded)."""
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_site_has_an_api_page_per_module(site):
    missing = []
    for module in modules():
        page = site / "reference" / "api" / Path(*module.split(".")) / "index.html"
        if not page.is_file():
            missing.append(module)
    assert not missing, f"no API page for {missing}"
    roc = page_text(site, "reference/api/lit_mia/metrics/roc")
    assert "roc_auc" in roc  # mkdocstrings rendered the members, not an empty page


def test_settings_page_lists_every_schema_key(site):
    from lit_mia import config

    text = page_text(site, "reference/settings")
    keys = config.schema_keys("natural")
    assert len(keys) > 100
    assert [k for k in keys if k not in text] == []


def test_registry_pages_list_every_attack_and_regime(site):
    from lit_mia.attacks.registry import ATTACKS
    from lit_mia.targets import TARGETS, settings_class

    attacks = page_text(site, "reference/attacks")
    assert [n for n in ATTACKS if not ATTACKS.is_plugin(n) and n not in attacks] == []
    targets = page_text(site, "reference/targets")
    for name in (n for n in TARGETS if not TARGETS.is_plugin(n)):
        assert name in targets, name
        assert settings_class(name).__name__ in targets, name
    cli = page_text(site, "reference/cli")
    for sub in ("run", "sweep", "config", "list", "report", "audit"):
        assert f"usage: lit-mia {sub}" in cli, sub


# a file with its extension or a folder with its slash (`lit_mia/default` is an MLflow name)
PATH = re.compile(
    r"(?<![\w/.-])((?:lit_mia|tests|conf|bench|examples|sweeps)/[\w./<>*-]*(?:\.(?:py|ya?ml|toml|md|json)\b|/))"
)


def test_paths_named_in_the_docs_exist():
    test_files = {p.name for p in (ROOT / "tests").rglob("test_*.py")}
    missing = []
    for page in doc_pages():
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for m in PATH.finditer(line):
                path = m.group(1)
                if "<" in path or "*" in path:
                    continue  # a pattern (lit_mia/attacks/<name>.py), not a path
                if not (ROOT / path).exists():
                    missing.append(f"{page.relative_to(ROOT)}:{n}: {path}")
            for name in re.findall(r"\b(test_\w+\.py)\b", line):
                if name not in test_files:
                    missing.append(f"{page.relative_to(ROOT)}:{n}: {name} (under tests/)")
    assert not missing, "\n".join(missing)


def test_code_cites_pages_inside_the_repository():
    outside, broken = [], []
    for folder in CITING:
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or path.suffix not in (".py", ".yaml", ".toml", ".md"):
                continue
            if path == Path(__file__):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            rel = path.relative_to(ROOT)
            if re.search(r"\b(DESIGN|REFERENCE)\.md\b", text):
                outside.append(str(rel))
            for m in re.finditer(r"\bdocs/[\w/.-]+\.md", text):
                if not (ROOT / m.group(0)).is_file():
                    broken.append(f"{rel}: {m.group(0)}")
    assert not outside, f"cite a docs/ page instead of DESIGN.md / REFERENCE.md: {outside}"
    assert not broken, f"cited docs pages that do not exist: {broken}"


def test_readme_is_an_overview():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, len(lines)
    assert not re.search(r"\bissues? \d", "\n".join(lines), re.I), "history goes to CHANGELOG.md"
    for target in ("make run", "make test"):
        assert target in "\n".join(lines)


KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def test_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    versions = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.M)
    assert versions[0][0] == "Unreleased"
    for name, rest in versions[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", name), name
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), rest
    for kind in re.findall(r"^### (.+)$", text, re.M):
        assert kind in KINDS, kind


def test_pre_commit_runs_the_ruff_of_make_lint():
    import importlib.metadata

    pin = re.search(r'"ruff==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert importlib.metadata.version("ruff") == pin  # make lint's ruff is the pinned one
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert {h["entry"].split()[1] for h in hooks} == {"check", "format"}
    paths = re.search(r"^LINT_PATHS :=([^#\n]*)", (ROOT / "Makefile").read_text(), re.M)
    lint_paths = paths.group(1).split()
    for hook in hooks:
        assert hook["additional_dependencies"] == [f"ruff=={pin}"]
        files = re.compile(hook["files"])
        for p in lint_paths:
            assert files.match(f"{p}/x.py"), (hook["id"], p)
        assert not files.match("examples/x.py")  # no more than make lint checks

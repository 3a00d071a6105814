"""Generate the reference pages of the site from the package itself (run by mkdocs-gen-files).

- reference/api/: one mkdocstrings page per module found by walking lit_mia/, and the
  SUMMARY.md that literate-nav turns into the API section of the navigation. A module that
  moves or appears gets its page on the next build; nothing lists modules by hand.
- reference/cli.md: the `--help` of `lit-mia` and of every subcommand, as argparse prints it.
- reference/settings.md: every key of the experiment schema (lit_mia.config.schema), its type,
  default and the comment beside it in the settings dataclass, section by section, plus the
  sweep keys.
- reference/attacks.md and reference/targets.md: the hand-written page, then what the attack
  registry and the regime registry hold (kind, description, code, settings of each entry).
- changelog.md: CHANGELOG.md of the repository.

Everything is read through the registries and the config layer, which import no torch, so the
build takes seconds. A name this script expects and cannot find fails the build.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import inspect
import io
import re
import sys
import textwrap
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lit_mia"
API = Path("reference", "api")
sys.path.insert(0, str(ROOT))

from lit_mia import cli, config  # noqa: E402 (after the path: the checkout's package)
from lit_mia.attacks.registry import ATTACKS  # noqa: E402
from lit_mia.targets import TARGETS, settings_class  # noqa: E402


# ----------------------------------------------------------------------------------- helpers
def api_page(module: str) -> str:
    """Site path (from the site root) of the API page of a dotted module name."""
    parts = module.split(".")
    path = API.joinpath(*parts) / "index.md" if is_package(module) else API.joinpath(*parts)
    return str(path if path.suffix == ".md" else path.with_suffix(".md"))


def is_package(module: str) -> bool:
    return (ROOT.joinpath(*module.split(".")) / "__init__.py").is_file()


def link_from(page: str, module: str, text: str | None = None) -> str:
    """A relative Markdown link from `page` to the API page of `module`."""
    target = Path(api_page(module))
    rel = Path(*[".."] * (len(Path(page).parts) - 1)) / target
    return f"[`{text or module}`]({rel.as_posix()})"


def first_paragraph(doc: str | None) -> str:
    doc = inspect.cleandoc(doc or "")
    return " ".join(doc.split("\n\n")[0].split())


def cell(value: object) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text else ""


# ----------------------------------------------------------------------------------- API pages
def gen_api() -> None:
    nav = mkdocs_gen_files.Nav()
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        doc = Path(api_page(module)).relative_to(API)
        nav[tuple(parts)] = doc.as_posix()
        with mkdocs_gen_files.open(API / doc, "w") as f:
            f.write(f"::: {module}\n")
        mkdocs_gen_files.set_edit_path(API / doc, path.relative_to(ROOT))
    with mkdocs_gen_files.open(API / "SUMMARY.md", "w") as f:
        f.writelines(nav.build_literate_nav())


# ----------------------------------------------------------------------------------- CLI
def help_text(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.parse([*argv, "--help"])
    text = out.getvalue()
    if not text.startswith("usage: lit-mia"):
        raise RuntimeError(f"lit-mia {' '.join(argv)} --help printed no usage: {text[:200]!r}")
    return text


def subcommands() -> list[str]:
    """The subcommands, read from the top-level usage line `{run,config,...}`."""
    m = re.search(r"\{([\w,-]+)\}", help_text([]))
    if not m:
        raise RuntimeError("no {subcommand,...} list in `lit-mia --help`")
    return m.group(1).split(",")


def gen_cli() -> None:
    lines = [
        "# Command line",
        "",
        "Generated from the argument parsers of `lit_mia/cli.py` on every build.",
        "Options and `key=value` overrides go in any order after the subcommand. Bad input",
        "prints one `error:` line naming the key and exits 2; Ctrl-C exits 130 and the MLflow",
        "run ends KILLED. `--dry-run` (run, sweep, report, audit) makes every check the command",
        "makes before it trains, through the same code, prints the plan and writes nothing.",
        "`--budget` (run, audit) exits 3 when a leakage budget is exceeded",
        "([Plan and budget](../howto/plan-and-budget.md)); `lit-mia plan` trains nothing.",
        "",
        "Which keys the overrides take: [Settings](settings.md); how files and overrides",
        "compose: [Configuration](configuration.md).",
        "",
        "## lit-mia",
        "",
        "```text",
        help_text([]).rstrip(),
        "```",
        "",
    ]
    for name in subcommands():
        lines += [f"## lit-mia {name}", "", "```text", help_text([name]).rstrip(), "```", ""]
    with mkdocs_gen_files.open("reference/cli.md", "w") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------------- settings
def field_comments(cls: type) -> dict[str, str]:
    """`name: type = default  # comment` -> {name: comment} over the class and its bases."""
    out: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(base) or base.__module__.startswith("types"):
            continue
        try:
            source = inspect.getsource(base)
        except (OSError, TypeError):  # made by make_dataclass: no source
            continue
        for m in re.finditer(r"^\s+(\w+)\s*:[^=\n]+=[^#\n]*#\s*(.+)$", source, re.M):
            out[m.group(1)] = m.group(2).strip()
    return out


def settings_rows(cls: type, prefix: str, sections: list, skip: set | None = None) -> list[str]:
    """Table rows for the leaf fields of dataclass `cls` under `prefix` (but the (name,
    repr(default)) pairs in `skip`); nested dataclass sections are appended to `sections` as
    (key, class)."""
    comments = field_comments(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(default):
            sections.append((key, type(default)))
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        note = comments.get(f.name, "").replace("|", "\\|")
        if skip is None or (f.name, repr(default)) not in skip:
            rows.append(f"| `{key}` | {cell(kind)} | {cell(repr(default))} | {note} |")
    return rows


def section_md(key: str, cls: type, level: int = 2) -> list[str]:
    out = [f"{'#' * level} `{key}`", ""]
    doc = inspect.cleandoc(cls.__doc__ or "") if cls.__module__.startswith("lit_mia") else ""
    if doc and not doc.startswith(cls.__name__ + "("):  # make_dataclass's generated docstring
        out += [textwrap.indent(doc, ""), ""]
    if cls.__module__.startswith("lit_mia."):
        out += [f"Defined in {link_from('reference/settings.md', cls.__module__)} "
                f"(`{cls.__name__}`).", ""]  # fmt: skip
    nested: list = []
    rows = settings_rows(cls, key + ".", nested)
    if rows:
        out += ["| key | type | default | note |", "|---|---|---|---|", *rows, ""]
    for sub_key, sub_cls in nested:
        out += section_md(sub_key, sub_cls, level + 1)
    return out


def gen_settings() -> None:
    from lit_mia.sweep.spec import SweepSettings

    exp = config.schema("natural")
    top: list = []
    rows = settings_rows(exp, "", top)
    lines = [
        "# Settings",
        "",
        "Every key an experiment file or a `key=value` override can set, generated from the",
        "schema (`lit_mia.config.schema`): the settings dataclasses the registries declare,",
        "with their defaults. The `target` section shown is the natural regime's; each regime",
        "adds its own keys ([Targets](targets.md)). `lit-mia config EXPERIMENT` prints the",
        "resolved values of one experiment.",
        "",
        "## Top-level keys",
        "",
        "| key | type | default | note |",
        "|---|---|---|---|",
        *rows,
        "",
    ]
    for key, cls in top:
        lines += section_md(key, cls)
    lines += [
        "## `sweep` (sweep files only)",
        "",
        "A sweep file (`sweeps/<name>.yaml`) adds a `sweep` section; "
        "[Sweeps](../howto/sweeps.md) explains the file.",
        "",
    ]
    lines += section_md("sweep", SweepSettings, 3)[2:]
    keys = config.schema_keys("natural")
    text = "\n".join(lines)
    missing = [k for k in keys if f"`{k}`" not in text]
    if missing:
        raise RuntimeError(f"settings page misses schema keys: {missing}")
    with mkdocs_gen_files.open("reference/settings.md", "w") as f:
        f.write(text)


# ----------------------------------------------------------------------------------- registries
def code_link(page: str, ref: object) -> str:
    value = getattr(ref, "value", None)
    if value is None:
        value = f"{ref.__module__}:{ref.__qualname__}"
    module, _, attr = value.partition(":")
    return link_from(page, module, f"{module}:{attr}")


def gen_attacks() -> None:
    page = "reference/attacks.md"
    lines = [
        "",
        "## The registry",
        "",
        "Generated from `lit_mia.attacks.registry.ATTACKS` on every build: each attack's kind,",
        "description, the code that runs it and the settings sections it reads (their keys in",
        "[Settings](settings.md#attack)).",
        "",
    ]
    for name in ATTACKS:
        if ATTACKS.is_plugin(name):
            continue
        a = ATTACKS[name]
        runs = code_link(page, a.scorer or a.run)
        how = "scorer" if a.scorer else "run"
        sections = ", ".join(f"`{k}`" for k in a.settings) or "the shared `attack.*` keys"
        lines += [
            f"### `{name}`",
            "",
            f"{a.description}.",
            "",
            f"- kind: `{a.kind}`",
            f"- {how}: {runs}",
            f"- settings: {sections}",
            "",
        ]
    with mkdocs_gen_files.open(page, "a") as f:
        f.write("\n".join(lines))


def gen_targets() -> None:
    page = "reference/targets.md"
    lines = [
        "",
        "## The registry",
        "",
        "Generated from `lit_mia.targets.TARGETS` on every build: every regime's",
        "LightningModule and its `target.*` keys with their defaults.",
        "",
    ]
    natural = {(f.name, repr(f.default)) for f in dataclasses.fields(settings_class("natural"))}
    for name in TARGETS:
        if TARGETS.is_plugin(name):
            continue
        cls = settings_class(name)
        module = re.search(r"\(([\w.]+)\)$", TARGETS.source(name)).group(1)
        skip = None if name == "natural" else natural - {("name", repr("natural"))}
        rows = settings_rows(cls, "target.", [], skip)
        shared = "every key" if skip is None else "the keys that differ from `natural`'s"
        lines += [
            f"### `{name}`",
            "",
            f"LightningModule in {link_from(page, module)}; settings `{cls.__name__}` in "
            f"{link_from(page, cls.__module__)}, {shared}:",
            "",
            "| key | type | default | note |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    with mkdocs_gen_files.open(page, "a") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------------- experiments
def header_comment(path: Path) -> str:
    """The leading `#` comment block of a YAML file, as one paragraph."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        out.append(line.lstrip("#").strip())
    return " ".join(out)


def gen_experiments() -> None:
    from omegaconf import OmegaConf

    lines = [
        "# Experiments and sweeps",
        "",
        "Generated on every build from `conf/experiment/*.yaml` and `sweeps/*.yaml`: what each",
        "shipped file is for (its header comment), and what it trains and attacks. Run one with",
        "`lit-mia run NAME` (a sweep with `lit-mia sweep NAME`); `lit-mia config NAME` prints",
        "every resolved key. Measured results of most of them: [Results](../results/index.md).",
        "",
        "## Experiments",
        "",
    ]
    for path in sorted(config.CONF_DIR.glob("experiment/*.yaml")):
        exp = OmegaConf.load(path)
        targets = list(exp.get("targets") or []) or [exp.get("target", {}).get("name", "natural")]
        attacks = list(exp.get("attacks") or ["ib", "ia"])
        lines += [
            f"### `{path.stem}`",
            "",
            f"*{exp.get('description', '')}*",
            "",
            header_comment(path),
            "",
            f"- targets: {', '.join(f'`{t}`' for t in targets)}",
            f"- attacks: {', '.join(f'`{a}`' for a in attacks)}",
            "",
        ]
    lines += ["## Sweeps", ""]
    for path in sorted(config.SWEEPS_DIR.glob("*.yaml")):
        spec = OmegaConf.load(path)
        params = ", ".join(f"`{k}`" for k in spec.get("params", {}))
        objectives = ", ".join(f"`{o.metric}` ({o.direction})" for o in spec.get("objectives", []))
        lines += [
            f"### `{path.stem}`",
            "",
            f"*{spec.get('description', '')}*",
            "",
            header_comment(path),
            "",
            f"- base experiment: `{spec.get('experiment', '')}`",
            f"- searched: {params}",
            f"- objectives: {objectives}",
            "",
        ]
    with mkdocs_gen_files.open("reference/experiments.md", "w") as f:
        f.write("\n".join(lines))


# ----------------------------------------------------------------------------------- package map
SENTENCE_END = re.compile(r"(?<!Fig)(?<!e\.g)(?<!\bal)\.\s+(?=[A-Z`])")  # not "Fig. 3"


def unit_of(module: str) -> str:
    """`lit_mia.attacks.lira` -> `attacks`: the top-level module or package of the package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imported_modules(path: Path, module: str) -> set[str]:
    """lit_mia modules a file imports (absolute and relative imports, anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m == "lit_mia" or m.startswith("lit_mia.")}


def gen_architecture() -> None:
    """The package map at the end of explanation/architecture.md: every top-level module or
    package, the first sentence of its docstring, and the units its code imports."""
    holds: dict[str, str] = {}
    imports: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        module = ".".join(parts)
        if module == "lit_mia":
            continue
        unit = unit_of(module)
        is_unit_doc = len(parts) == 2
        if is_unit_doc:
            sentence = first_paragraph(ast.get_docstring(ast.parse(path.read_text("utf-8"))))
            holds[unit] = SENTENCE_END.split(sentence)[0].rstrip(".")
        deps = {unit_of(m) for m in imported_modules(path, module) if m != "lit_mia"}
        imports.setdefault(unit, set()).update(deps - {unit})
    layers = architecture_layers()
    layer_of = {u: i for i, (units, _) in enumerate(layers) for u in units}
    page = "explanation/architecture.md"
    lines = [
        "",
        "Generated on every build from the source. The layers are those `test_architecture.py`",
        "enforces, lowest first: an import may point within a layer or down, never up.",
        "",
        "| layer | units | what the layer is |",
        "|---|---|---|",
    ]
    for i, (units, comment) in enumerate(layers):
        lines.append(f"| {i} | {', '.join(f'`{u}`' for u in units)} | {comment} |")
    lines += [
        "",
        "Each module or package directly under `lit_mia/`, the first sentence of its docstring,",
        "its layer and the units its code imports (read with `ast`, as the architecture test",
        "reads them). Each name links to its API page.",
        "",
        "| unit | layer | holds | imports |",
        "|---|---|---|---|",
    ]
    for unit in sorted(holds, key=lambda u: (layer_of.get(u, len(layers)), u)):
        name = f"lit_mia.{unit}"
        deps = ", ".join(f"`{d}`" for d in sorted(imports.get(unit, ()))) or "-"
        text = holds[unit].replace("|", "/")
        layer = layer_of.get(unit, "-")
        lines.append(f"| {link_from(page, name, unit)} | {layer} | {text} | {deps} |")
    with mkdocs_gen_files.open(page, "a") as f:
        f.write("\n".join(lines) + "\n")


def architecture_layers() -> list[tuple[tuple[str, ...], str]]:
    """`LAYERS` of test_architecture.py (lowest first), each with its trailing comment."""
    (path,) = (ROOT / "tests").rglob("test_architecture.py")
    source = path.read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        target = getattr(node, "target", None) or (getattr(node, "targets", None) or [None])[0]
        if isinstance(target, ast.Name) and target.id == "LAYERS":
            lines = source.splitlines()
            out = []
            for elt in node.value.elts:
                line = lines[elt.lineno - 1]
                comment = line.split("#", 1)[1].strip() if "#" in line else ""
                out.append((ast.literal_eval(elt), comment.replace("|", "/")))
            return out
    raise RuntimeError(f"no LAYERS in {path}")


# ----------------------------------------------------------------------------------- changelog
def gen_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    with mkdocs_gen_files.open("changelog.md", "w") as f:
        f.write(text)


gen_api()
gen_cli()
gen_settings()
gen_attacks()
gen_targets()
gen_architecture()
gen_experiments()
gen_changelog()

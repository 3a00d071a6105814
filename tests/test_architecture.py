"""Architecture guards for the `lit_mia` package (renovation issue 10;
docs/explanation/architecture.md).

The rules checked here:

- One reading path, downward imports only: the import graph of `lit_mia` has no cycles.
- MLflow only in the tracking layer: no module but `lit_mia.tracking` imports `mlflow`.
- Optuna only in the sweep layer: no module outside the `lit_mia.sweep` package (its
  `__init__` and submodules: spec, storage, study, worker, pareto, pgserver) imports `optuna`.
- Small files: no `lit_mia/**/*.py` has more than 500 lines.
- Layers (`LAYERS`, lowest first): every top-level module or package of `lit_mia` sits in one
  layer, and no import points from a lower layer to a higher one (0 upward arrows; imports
  within a layer are allowed). A new top-level module fails until it is given a layer.

The import graph is read from source with `ast` (nothing is imported, no third-party tool):

- Nodes are module names, `lit_mia.attacks.base`; a package's `__init__.py` is the package
  itself, `lit_mia.attacks`.
- Every import in a file counts, at module level or inside a function, method, class, `try`
  or `if`, except the body of `if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:` (annotations
  only, never executed); its `else:` branch counts.
- Relative imports are resolved against the importing module's package. `from a.b import c`
  is module `a.b.c` when `a/b/c.py` or `a/b/c/__init__.py` exists, else `a.b`.
- No implicit edge from a submodule to its parent package (importing `a.b.c` runs
  `a/b/__init__.py`, but that edge is not added), and no self-edge.

`test_cycle_checker_*` runs the builder on a synthetic package so the guard cannot rot into
one that passes everything, and `test_graph_has_known_edges` makes sure the real graph is not
empty.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lit_mia"
MAX_LINES = 500
TRACKING_LAYER = "lit_mia.tracking"
SWEEP_LAYER = "lit_mia.sweep"

Graph = dict[str, set[str]]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "paths", "plugins", "registry", "progress", "quiet", "weights_file"),  # foundation
    ("metrics", "nets", "data", "perturb", "bounds", "plots"),  # pure math, data, architectures
    ("predictor", "targets", "fitting", "training"),  # training regimes (LightningModules)
    ("models",),  # what attacks train: shadow/reference farms, update farm, cache
    ("attacks", "callbacks"),  # every attack family, update leakage included
    ("config",),  # schema from the registries' settings, loading, validation
    ("tracking",),  # MLflow
    ("evaluation", "comparison"),  # the one evaluation loop, comparison across targets
    ("run", "run_updates"),  # `lit-mia run`
    ("auditing", "sweep", "report_html", "dry_run", "plan", "reproduce"),  # the other front ends
    ("cli", "lit_mia"),  # entry points (`lit_mia` = the package's __init__)
)
"""Layers of the package, lowest first, by top-level module or package (`lit_mia.attacks.lira`
is in layer `attacks`)."""

# --------------------------------------------------------------------------- graph builder


def module_name(path: Path, root: Path) -> str:
    """Dotted module name of `path`, a .py file under package directory `root`.

    `root/x/y.py` -> `<root.name>.x.y`; `root/x/__init__.py` -> `<root.name>.x`.
    """
    parts = path.relative_to(root.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    """Whether dotted `name` is a module or package inside package directory `root`."""
    parts = name.split(".")
    if parts[0] != root.name:
        return False
    base = root.parent.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _is_type_checking(test: ast.expr) -> bool:
    """`TYPE_CHECKING` or `<anything>.TYPE_CHECKING` as an `if` condition."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement below `node`, skipping the bodies of `if TYPE_CHECKING:`."""
    out: list[ast.Import | ast.ImportFrom] = []
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        out.append(node)
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = [node.test, *node.orelse]
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        out.extend(_import_nodes(child))
    return out


@functools.cache  # each file is parsed once per session, whichever test asks first
def imports_of(path: Path, root: Path) -> frozenset[str]:
    """Absolute names of the modules `path` imports (third-party ones too), resolved as the
    module docstring says. `root` is the package directory `path` lies in."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        if node.level:  # relative: level 1 = this package, 2 = its parent, ...
            parts = package.split(".")
            base = ".".join([*parts[: len(parts) - node.level + 1], node.module or ""]).rstrip(".")
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            out.add(sub if alias.name != "*" and _is_module(sub, root) else base)
    return frozenset(out)


def import_graph(root: Path) -> Graph:
    """Module -> modules of the same package it imports, for every .py file under `root`."""
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    names = {module_name(p, root): p for p in files}
    return {
        name: {dep for dep in imports_of(path, root) if dep in names and dep != name}
        for name, path in names.items()
    }


def _sccs(graph: Graph) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(sorted(comp))
    return out


def _shortest_cycle(graph: Graph, start: str, within: set[str]) -> list[str]:
    """Shortest chain `start -> ... -> start` using only nodes of `within` (BFS)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w not in within:
                    continue
                if w == start:
                    chain = [v]
                    while chain[-1] != start:
                        chain.append(parent[chain[-1]])
                    return [*reversed(chain), start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is on no cycle within {sorted(within)}")


def find_cycles(graph: Graph) -> list[list[str]]:
    """Import cycles of `graph`: for every strongly connected component with more than one
    module, the shortest cycle through each of its modules (deduplicated, each rotated to
    start at its smallest name). A chain is closed: `[a, b, a]` means a -> b -> a."""
    found: set[tuple[str, ...]] = set()
    for comp in _sccs(graph):
        if len(comp) < 2:
            continue
        for v in comp:
            ring = _shortest_cycle(graph, v, set(comp))[:-1]
            i = ring.index(min(ring))
            found.add(tuple(ring[i:] + ring[:i]))
    return sorted([*c, c[0]] for c in found)


@functools.cache
def _real_graph() -> Graph:
    return import_graph(PACKAGE)


def _importers(prefix: str, allowed: str) -> dict[str, list[str]]:
    """Modules outside `allowed` (and its submodules) importing `prefix` or `prefix.*`."""
    out: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path, PACKAGE)
        if name == allowed or name.startswith(allowed + "."):
            continue
        hits = sorted(m for m in imports_of(path, PACKAGE) if m.split(".")[0] == prefix)
        if hits:
            out[name] = hits
    return out


# --------------------------------------------------------------------------- the rules


def test_no_import_cycles():
    cycles = find_cycles(_real_graph())
    assert not cycles, "import cycles in lit_mia:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(("lib", "layer"), [("mlflow", TRACKING_LAYER), ("optuna", SWEEP_LAYER)])
def test_library_only_in_its_layer(lib, layer):
    bad = _importers(lib, layer)
    assert not bad, f"{lib} imported outside {layer}:\n" + "\n".join(
        f"{mod}: {', '.join(names)}" for mod, names in bad.items()
    )


def test_files_are_short():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[str(path.relative_to(PACKAGE.parent))] = n
    assert not long, f"files over {MAX_LINES} lines:\n" + "\n".join(
        f"{path}: {n}" for path, n in long.items()
    )


def layer_of(module: str) -> str:
    """`lit_mia.attacks.lira` -> `attacks`; the package itself -> `lit_mia`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_arrows(graph: Graph, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Imports from a lower layer to a higher one, as `a -> b (layer i -> j)`."""
    rank = {name: i for i, names in enumerate(layers) for name in names}
    out = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            i, j = rank[layer_of(mod)], rank[layer_of(dep)]
            if j > i:
                out.append(f"{mod} -> {dep} (layer {i} -> {j})")
    return out


def test_every_module_has_a_layer():
    placed = {name for names in LAYERS for name in names}
    missing = sorted({layer_of(m) for m in _real_graph()} - placed)
    assert not missing, f"give these a layer in LAYERS: {missing}"
    assert len(placed) == sum(map(len, LAYERS)), "a name sits in two layers"


def test_no_upward_imports():
    bad = upward_arrows(_real_graph(), LAYERS)
    assert not bad, "imports from a lower layer to a higher one:\n" + "\n".join(bad)


def test_upward_checker_finds_an_upward_import():
    graph = {"p.low": {"p.high"}, "p.high": {"p.low"}, "p.mid.x": {"p.low"}}
    layers = (("low",), ("mid",), ("high",))
    assert upward_arrows(graph, layers) == ["p.low -> p.high (layer 0 -> 2)"]


# --------------------------------------------------------------------------- the checker itself


def _write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fake"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_cycle_checker_finds_cycle_through_function_import(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "a.py": "from fake import b\n",
            "b.py": "def f():\n    import fake.a\n",
            "sub/__init__.py": "from ..c import x\n",
            "sub/d.py": "from . import e\n",
            "sub/e.py": "from fake.sub import d\n",
            "c.py": "x = 1\n",
        },
    )
    graph = import_graph(root)
    assert graph["fake.a"] == {"fake.b"}
    assert graph["fake.b"] == {"fake.a"}
    assert graph["fake.sub"] == {"fake.c"}  # relative `..c`, `x` is a name not a module
    assert graph["fake.sub.d"] == {"fake.sub.e"}  # `from . import e` -> the submodule
    assert find_cycles(graph) == [
        ["fake.a", "fake.b", "fake.a"],
        ["fake.sub.d", "fake.sub.e", "fake.sub.d"],
    ]


def test_cycle_checker_passes_acyclic_package(tmp_path):
    root = _write_package(
        tmp_path,
        {
            "a.py": "from fake import b\nfrom fake.b import g\n",
            "b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from fake.a import A\n"
                "else:\n    import fake.c\n"
                "def g():\n    from . import c\n"
            ),
            "c.py": "import typing\nif typing.TYPE_CHECKING:\n    import fake.a\n",
        },
    )
    graph = import_graph(root)
    assert graph == {"fake": set(), "fake.a": {"fake.b"}, "fake.b": {"fake.c"}, "fake.c": set()}
    assert find_cycles(graph) == []


def test_find_cycles_reports_each_cycle_of_a_component():
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "a"], ["a", "b", "c", "a"]]


def test_graph_has_known_edges():
    graph = _real_graph()
    assert len(graph) > 20
    assert "lit_mia.training" in graph["lit_mia.run"]
    assert "lit_mia.attacks.registry" in graph["lit_mia.run"]
    assert "lit_mia.metrics" in graph["lit_mia.plots"]
    mlflow_users = _importers("mlflow", "lit_mia.nowhere")
    assert f"{TRACKING_LAYER}.run" in mlflow_users
    assert f"{TRACKING_LAYER}.store" in mlflow_users
    sweep_layer = {m for m in _importers("optuna", "lit_mia.nowhere") if m.startswith(SWEEP_LAYER)}
    assert f"{SWEEP_LAYER}.study" in sweep_layer  # the study code, inside the layer


# --------------------------------------------------------------------------- light CLI path

HEAVY = ("torch", "pytorch_lightning", "lightning", "mlflow", "optuna", "sklearn", "matplotlib")
"""Libraries the config layer must not import: `lit-mia list`, `lit-mia config` and every
unknown key or name come back before any of them would have loaded (issue 22)."""

LIGHT_PROBE = """
import contextlib, io, sys
from lit_mia import cli
calls = [
    ["list"],
    ["config", "default"],
    ["config", "regimes", "trainer.max_epochs=30"],
    ["run", "default", "data.n_membrs=3"],
    ["run", "default", "attacks=[ib,nope]"],
    ["run", "default", "net.name=resnet9000"],
    ["run", "default", "targets=[natural,pgdd]"],
    ["run", "default", "target.lr=-1"],
    ["run", "updates_leak_single", "updates.m_shadw=1"],
    ["sweep", "nosuchsweep"],
    ["sweep", "eps", "sweep.n_trals=2"],
    ["sweep", "eps", "data.n_membrs=3"],
    ["run", "nosuchexperiment"],
    ["plan", "fpr=0"],
    ["run", "default", "--budget", "acu=0.6"],
]
codes = []
for argv in calls:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes.append(cli.main(argv))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(codes, sorted({{m.split(".")[0] for m in heavy}}))
"""


def test_config_and_cli_errors_import_no_heavy_library():
    """`lit-mia list`, `config` and the one-line errors for typos and bad values (also of
    `plan` and `--budget`) run without
    importing torch, Lightning, MLflow, Optuna, scikit-learn or matplotlib: they answer faster
    than `python -c "import torch"` alone (bench/bench_cli.py measures the ratio)."""
    import subprocess
    import sys

    code = LIGHT_PROBE.format(heavy=set(HEAVY))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    codes, heavy = p.stdout.strip().rsplit("] [", 1)
    # list and the two configs exit 0, every bad input exits 2
    assert codes == "[0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2", p.stdout
    assert heavy == "]", f"heavy libraries imported on the light path: {p.stdout}"


def test_light_probe_detects_a_heavy_import():
    """The probe above can fail: the same check sees torch once something imports it."""
    import subprocess
    import sys

    code = "import sys, torch; print(sorted(m for m in sys.modules if m == 'torch'))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "['torch']"

"""Every command the docs show runs here, so a documented command cannot rot (issue 22).

Collected from README.md, bench/README.md, examples/*/README.md and docs/**/*.md:

- every line of a ```bash / ```sh / ```shell / ```console block (backslash continuations
  joined, `# comments` dropped, `python - <<'EOF' ... EOF` heredocs kept whole);
- every inline code span that starts with `lit-mia ` or `make ` and holds no placeholder
  (an upper-case word such as EXPERIMENT, `...`, `<...>`, `[key=value ...]`).

A fenced block without a language that holds a `lit-mia` or `make` line fails the test: mark it
```bash (it runs) or ```text (a synopsis). `<!-- doc-test: slow (why) -->` on the line above a fence
runs that block only in the slow suite (its Python trains models for a minute).

How each command runs, in a scratch folder that mirrors the repository's top level (links), so
relative paths work and nothing is written into the checkout:

- `lit-mia run|sweep|report|audit ...`: in-process with `--dry-run` appended (every check the
  command makes before training: lit_mia/dry_run.py); `lit-mia list|config|--help` as written.
  A command that selects a GPU trainer must fail with the trainer error where there is no GPU.
- `make TARGET VAR=...`: `make -n` (the target exists, its variables expand; the venv stamp is
  assumed fresh), then every `lit-mia` line make would run, dry-run as above (so `make sweep
  WORKERS=1 ARGS=...` checks the real argument order), every bench script's parser given
  `ARGS`; `make help` runs for real.
- `python - <<'EOF'`: the heredoc runs for real with this interpreter.
- `pip install -e DIR`: DIR has a pyproject.toml and its distribution is installed here.
- `| grep PATTERN` after a command: PATTERN occurs in its output.

Anything else fails with "no rule", so a new kind of command must be taught here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lit_mia import cli

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent  # the venv running the tests (make's VENV)
VENV = VENV.relative_to(ROOT) if VENV.is_relative_to(ROOT) else VENV
RUNNABLE = ("bash", "sh", "shell", "console")
PLACEHOLDER = re.compile(r"(?<![\w.=/-])[A-Z][A-Z_]{2,}(?![\w=])|\.\.\.|<[^>]*>|\[key=")
DRY = ("run", "sweep", "report", "audit", "reproduce")


def doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "bench" / "README.md"]
    files += sorted(ROOT.glob("examples/*/README.md")) + sorted(ROOT.glob("docs/**/*.md"))
    return [f for f in files if f.is_file()]


@dataclass
class Block:
    file: Path
    line: int  # of the opening fence, 1-based
    lang: str
    lines: list[str]
    slow: bool = False
    inline: bool = False

    @property
    def id(self) -> str:
        kind = "inline" if self.inline else "block"
        return f"{self.file.relative_to(ROOT)}:{self.line}:{kind}"


@dataclass
class Command:
    words: list[str]  # the shell words (continuations joined, quotes removed)
    line: int
    heredoc: str | None = None  # the body of `<<'EOF'`
    pipes: list[list[str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return shlex.join(self.words)


def split_shell(text: str) -> list[list[list[str]]]:
    """`a x; b | grep y && c` -> [[a x]], [[b], [grep y]], [[c]]: commands, each a pipeline."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    out, pipeline, words = [], [], []
    for tok in [*lex, ";"]:
        if tok in (";", "&&", "|"):
            if words:
                pipeline.append(words)
            words = []
            if tok != "|" and pipeline:
                out.append(pipeline)
                pipeline = []
        else:
            words.append(tok)
    return out


def parse_blocks(path: Path) -> list[Block]:
    """Fenced blocks, plus one pseudo-block per file of runnable inline code spans."""
    blocks, prose = [], []  # prose: (line number, text) outside fences
    text = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(text):
        m = re.match(r"\s*```(\S*)", text[i])
        if not m:
            prose.append((i + 1, text[i]))
            i += 1
            continue
        start, lang = i + 1, m.group(1)
        slow = i > 0 and "<!-- doc-test: slow" in text[i - 1]
        body = []
        i += 1
        while i < len(text) and not re.match(r"\s*```\s*$", text[i]):
            body.append(text[i])
            i += 1
        i += 1
        blocks.append(Block(path, start, lang, body, slow))
    joined = "\n".join(t for _, t in prose)
    sections: dict[int, list[str]] = {}  # heading line -> its runnable spans
    heading, seen = 1, set()
    for m in re.finditer(r"^## .*$|`([^`]+)`", joined, re.M):  # a span may wrap a line
        n = prose[joined.count("\n", 0, m.start())][0]
        if m.group(1) is None:
            heading = n
            continue
        span = " ".join(m.group(1).split())
        words = span.split()
        bare = words[0] == "lit-mia" and len(words) == 2 and words[1] in DRY  # names the command
        runnable = span.startswith(("lit-mia ", "make ")) and not PLACEHOLDER.search(span)
        if runnable and not bare and span not in seen:
            seen.add(span)
            sections.setdefault(heading, []).append(f"{span}  # line {n}")
    for n, spans in sections.items():
        blocks.append(Block(path, n, "bash", spans, inline=True))
    return blocks


def all_blocks() -> list[Block]:
    return [b for f in doc_files() for b in parse_blocks(f)]


def commands(block: Block) -> list[Command]:
    """The shell commands of a block: continuations joined, comments dropped, heredocs whole,
    `;` / `&&` sequences split, `|` pipes kept apart."""
    out: list[Command] = []
    lines = block.lines
    i = 0
    while i < len(lines):
        n = block.line + 1 + i if not block.inline else int(lines[i].rsplit("line ", 1)[1])
        text = lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        heredoc = None
        m = re.search(r"<<-?\s*'?(\w+)'?", text)
        if m:
            end = lines.index(m.group(1), i)
            heredoc, i = "\n".join(lines[i:end]) + "\n", end + 1
            text = text[: m.start()]
        for head, *pipes in split_shell(text):
            out.append(Command(head, n, heredoc, pipes))
    return out


# ----------------------------------------------------------------------------- runners
class Outcome:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def run_cli(argv: list[str], capsys) -> Outcome:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return Outcome(code, out, err)


def needs_gpu(argv: list[str]) -> bool:
    return any(a in ("trainer=gpu", "trainer.accelerator=gpu", "trainer.accelerator=cuda")
               for a in argv)  # fmt: skip


def lit_mia(argv: list[str], where: str, capsys) -> Outcome:
    """One `lit-mia` command: dry run for the commands that train or write."""
    if argv and argv[0] in DRY:
        argv = [*argv, "--dry-run"]
    res = run_cli(argv, capsys)
    if needs_gpu(argv):
        import torch

        if not torch.cuda.is_available():
            assert res.code == 2, (where, res.err)
            assert "cannot start here" in res.err, (where, res.err)
            return Outcome(0, res.out, "")
    assert res.code == 0, f"{where}: lit-mia {shlex.join(argv)} -> exit {res.code}: {res.err}"
    if argv[0] in DRY:
        assert res.out.startswith("dry run: every check passed"), (where, res.out)
    return res


class _Parsed(Exception):
    pass


def bench_args_parse(script: str, args: list[str], where: str) -> None:
    """`args` are accepted by the parser of bench/<script> (nothing is benchmarked: the
    parse is stopped right after argparse returns)."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        original(self, argv, namespace)
        raise _Parsed

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        module = importlib.import_module(script)
        argparse.ArgumentParser.parse_args = parse_then_stop
        with pytest.raises(_Parsed):
            module.main(args)
    except SystemExit as e:
        raise AssertionError(f"{where}: bench/{script}.py refuses {args}: exit {e.code}") from None
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.path.remove(str(ROOT / "bench"))


# A `make test ARGS=...` running this file hands its variables down (MAKEFLAGS, and the
# environment, where `ARGS ?=` would pick them up): the documented commands run without them.
MAKE_VARS = re.findall(r"^(\w+)\s*\?=", (ROOT / "Makefile").read_text(), re.M)
MAKE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", *MAKE_VARS)
}


def make(words: list[str], where: str, capsys) -> Outcome:
    stamp = VENV / ".installed"
    if words[1:2] == ["help"]:
        proc = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, env=MAKE_ENV)
        assert proc.returncode == 0, (where, proc.stderr)
        assert "make targets" in proc.stdout, (where, proc.stderr)
        return Outcome(0, proc.stdout, "")
    dry = ["make", "-n", "-o", str(stamp), f"VENV={VENV}", *words[1:]]
    proc = subprocess.run(dry, cwd=ROOT, capture_output=True, text=True, env=MAKE_ENV)
    assert proc.returncode == 0, f"{where}: {shlex.join(words)}: {proc.stderr.strip()}"
    ran = []
    for line in proc.stdout.splitlines():
        if line.startswith(f"{VENV}/bin/lit-mia "):  # what make would run
            argv = shlex.split(line)[1:]
            ran.append(lit_mia(argv, f"{where} (via make)", capsys))
    m = re.search(
        r"for b in ([\w ]+); do .*?python bench/bench_\$b\.py ?(.*?); done", proc.stdout, re.S
    )
    if m:
        for b in m.group(1).split():
            bench_args_parse(f"bench_{b}", shlex.split(m.group(2)), where)
    return Outcome(0, "\n".join(r.out for r in ran) or proc.stdout, "")


def pip(words: list[str], where: str) -> Outcome:
    assert words[1:3] == ["install", "-e"], f"{where}: no rule for {words}"
    assert len(words) == 4, f"{where}: no rule for {words}"
    project = ROOT / words[3] / "pyproject.toml"
    assert project.is_file(), f"{where}: {words[3]} has no pyproject.toml"
    name = re.search(r'^name\s*=\s*"([^"]+)"', project.read_text(), re.M).group(1)
    importlib.metadata.distribution(name)  # installed (make setup does it)
    return Outcome(0, "", "")


def python(cmd: Command, where: str, cwd: Path) -> Outcome:
    assert cmd.heredoc is not None, f"{where}: no rule for python without a heredoc"
    proc = subprocess.run(
        [sys.executable, "-"], input=cmd.heredoc, cwd=cwd, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"{where}: the Python block failed:\n{proc.stderr[-3000:]}"
    return Outcome(0, proc.stdout, proc.stderr)


def execute(cmd: Command, where: str, cwd: Path, capsys) -> None:
    words = cmd.words
    if words[0] == "lit-mia":
        res = lit_mia(words[1:], where, capsys)
    elif words[0] == "make":
        res = make(words, where, capsys)
    elif words[0] == "pip":
        res = pip(words, where)
    elif words[0] in ("python", "python3"):
        res = python(cmd, where, cwd)
    elif words[0] in (".", "source") and len(words) == 2:
        assert (ROOT / words[1]).is_file() or Path(words[1]).is_file(), where
        return
    else:
        raise AssertionError(f"{where}: no rule for {cmd.text!r}; teach {Path(__file__).name}")
    for grep in cmd.pipes:
        assert grep[0] == "grep", f"{where}: no rule for the pipe | {grep}"
        assert len(grep) == 2, f"{where}: no rule for the pipe | {grep}"
        assert grep[1] in res.out, f"{where}: {grep[1]!r} not in the output of {cmd.text}"


def scratch(tmp_path: Path) -> Path:
    """A working folder whose top-level entries link to the repository's (read-only use)."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv", "mlruns") and not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    return tmp_path


def needs_store(block: Block) -> bool:
    """The block reports on a study: it gets a copy of the tiny study's MLflow store."""
    return any(re.match(r"(make|lit-mia) report\b", c.text) for c in commands(block))


BLOCKS = all_blocks()


def test_doc_blocks_are_typed():
    """A block that shows lit-mia or make lines says whether it runs (bash) or not (text)."""
    for b in BLOCKS:
        shows = any(re.match(r"\s*(\$ )?(lit-mia|make)\b", ln) for ln in b.lines)
        assert b.lang or not shows, f"{b.id}: mark the fence ```bash (runs) or ```text"


def test_the_collector_finds_the_known_commands():
    """The collector is not vacuous: README's own quick start and sweep lines are found."""
    found = {c.text for b in BLOCKS if b.lang in RUNNABLE for c in commands(b)}
    assert "make run" in found
    assert "make report" in found
    assert any(t.startswith("lit-mia sweep eps --workers 2 ") for t in found)
    assert any(t.startswith("make sweep") for t in found)
    assert sum(t.startswith("lit-mia ") for t in found) >= 10


def marks(block: Block) -> list:
    out = [pytest.mark.slow] if block.slow else []
    return out + ([pytest.mark.xdist_group("tiny_study")] if needs_store(block) else [])


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.id, marks=marks(b)) for b in BLOCKS if b.lang in RUNNABLE]
)
def test_documented_commands_run(block, request, tmp_path, monkeypatch, capsys):
    cwd = scratch(tmp_path)
    monkeypatch.chdir(cwd)
    if needs_store(block):  # `make report` reads the default store, mlruns/ of the cwd
        (cwd / "mlruns").mkdir()
        shutil.copy(
            request.getfixturevalue("tiny_study").folder / "mlruns" / "mlflow.db", cwd / "mlruns"
        )
    for cmd in commands(block):
        execute(cmd, f"{block.file.relative_to(ROOT)}:{cmd.line}", cwd, capsys)
    assert not (ROOT / "model.pt").exists()  # nothing written into the checkout

"""Two CLI gaps a new user hit: a YAML syntax error (one line with file and line, exit 2, also
for sweep files) and `attacks=ib` without brackets (a single name, or names separated by
commas, is a list; an unknown name still lists the valid ones)."""

from __future__ import annotations

from itertools import takewhile

from lit_mia import cli

BROKEN = "description: broken\nattacks: [ib\nseed: 1\n"  # the flow list is never closed


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: "), err
    assert err.count("\n") == 1, err
    return err


def test_experiment_yaml_syntax_error(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(BROKEN)
    for command in ("run", "config"):
        assert cli.main([command, str(path)]) == 2
        err = one_line(capsys)
        assert f"{path}:3: YAML syntax error" in err  # PyYAML reports the line it choked on


def test_sweep_yaml_syntax_error(tmp_path, capsys):
    path = tmp_path / "sw.yaml"
    path.write_text("experiment: single\nparams:\n  net.width: {type: categorical\n")
    assert cli.main(["sweep", str(path)]) == 2
    err = one_line(capsys)
    assert f"{path}:" in err
    assert "YAML syntax error" in err


def attacks_of(capsys, *overrides: str) -> list[str]:
    assert cli.main(["config", "single", *overrides]) == 0
    text = capsys.readouterr().out
    block = text.split("\nattacks:\n", 1)[1].split("\n")
    return [ln[2:] for ln in takewhile(lambda ln: ln.startswith("- "), block)]


def test_attacks_without_brackets(capsys):
    assert attacks_of(capsys, "attacks=ib") == ["ib"]
    assert attacks_of(capsys, "attacks=ib,ia") == ["ib", "ia"]
    assert attacks_of(capsys, "attacks=[ib]") == ["ib"]
    assert cli.main(["config", "single", "attacks=nosuch"]) == 2
    err = one_line(capsys)
    assert "unknown attack (in attacks) 'nosuch'; valid: " in err
    assert "ib" in err

"""`lit-mia audit CHECKPOINT ... members=FILE` (lit_mia/auditing/checkpoint.py) on a state dict
written here by a plain PyTorch loop (a model trained outside lit_mia), and its bad input:
one line, exit 2, no MLflow run left RUNNING (here: none started)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lit_mia import cli
from lit_mia.data.datasets import load_dataset
from lit_mia.nets import build_net
from lit_mia.tracking import client_for, resolve_uri

N = 150
NET = ["net.name=mlp", "net.width=0.25", "data.name=digits"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(folder, members indices): mlp(width 0.25) fitted to N digits, state dict model.pt and
    the member indices members.txt (one per line) in folder."""
    d = tmp_path_factory.mktemp("ckpt")
    b = load_dataset("digits")
    members = np.random.default_rng(5).permutation(len(b))[:N]
    torch.manual_seed(0)
    net = build_net("mlp", b.shape, b.n_classes, b.mean, b.std, width=0.25)
    x, y = b.x[members], b.y[members]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    torch.save(net.state_dict(), d / "model.pt")
    (d / "members.txt").write_text("# trained on\n" + "\n".join(map(str, members)) + "\n")
    return d, members


def runs(uri: str) -> list:
    client = client_for(resolve_uri(uri)[0])
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_audit_checkpoint(trained, tmp_path, capsys):
    d, members = trained
    uri = str(tmp_path / "mlruns")
    argv = [
        "audit",
        str(d / "model.pt"),
        *NET,
        "attacks=[ib]",
        "attack.calibrate=false",
        f"members={d / 'members.txt'}",
        f"tracking.uri={uri}",
        "tracking.log_checkpoint=false",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "| audit/model |" in out
    assert "MLflow: experiment 'lit_mia/audit' in" in out  # as the store and the UI name it
    (run,) = runs(uri)
    assert run.info.status == "FINISHED"
    assert run.data.tags["lit_mia.checkpoint"] == str((d / "model.pt").resolve())
    m = run.data.metrics
    assert m["target/train_acc"] == 1.0 and m["attack/ib/auc_ci_low"] > 0.5
    assert run.data.params["data.n_members"] == str(N) == run.data.params["data.n_nonmembers"]
    split = client_for(resolve_uri(uri)[0]).download_artifacts(
        run.info.run_id, "split/indices.json", str(tmp_path)
    )
    s = json.loads(open(split).read())
    assert sorted(s["members"]) == sorted(members.tolist())
    assert not set(s["nonmembers"]) & set(s["members"]) and not set(s["shadow"]) & set(s["members"])


CASES = [
    (
        "wider-net",
        ["net.width=0.5"],
        {},
        ["does not match net mlp", "shapes differ", "2.weight [64, 64] vs [128, 64]"],
    ),
    ("deeper-net", ["net.depth=3"], {}, ["does not match net mlp", "missing keys", "'8.weight'"]),
    ("out-of-range", [], {"members": "1 2 5000\n"}, ["out of range [0, 1797)", "5000", "digits"]),
    ("repeated", [], {"members": "1, 2, 2"}, ["repeats indices [2]"]),
    ("not-integers", [], {"members": "1 two 3"}, ["not a list of integer indices"]),
    ("overlap", [], {"members": "1 2 3 4", "nonmembers": "4 5 6 3"}, ["overlap in 2 indices"]),
    ("no-members", ["members"], {}, ["needs members=FILE"]),
    ("missing-ckpt", ["ckpt=none.pt"], {}, ["none.pt", "does not exist"]),
    ("code-ckpt", ["ckpt=code"], {}, ["not only tensors", "never unpickles code"]),
    ("image-folder-missing", ["data.name=image_folder", "data.root={tmp}/nope"], {}, ["nope"]),
    ("image-folder-empty", ["data.name=image_folder", "data.root={tmp}"], {}, ["no images"]),
]


@pytest.mark.parametrize("case, extra, files, words", CASES, ids=[c[0] for c in CASES])
def test_audit_bad_input(trained, tmp_path, capsys, case, extra, files, words):
    d, _ = trained
    ckpt = str(d / "model.pt")
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text)
    mem = str(tmp_path / "members.txt") if "members" in files else str(d / "members.txt")
    over = [f"members={mem}"] + [f"{k}={tmp_path}/{k}.txt" for k in files if k != "members"]
    if extra == ["members"]:
        over, extra = [], []
    for e in list(extra):
        if e.startswith("ckpt="):
            extra.remove(e)
            ckpt = str(tmp_path / e[5:])
            if e == "ckpt=code":
                torch.save({"w": torch.zeros(1), "f": np.dtype}, ckpt)
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    uri = str(tmp_path / "mlruns")
    argv = ["audit", ckpt, *NET, "attacks=[ib]", *over, *extra, f"tracking.uri={uri}"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert all(w in err[0] for w in words), err[0]
    assert not (tmp_path / "mlruns").exists()  # refused before any MLflow run


def test_run_with_empty_image_folder_exits_2(tmp_path, capsys):
    argv = ["run", "single", "data.name=image_folder", f"data.root={tmp_path}"]
    assert cli.main([*argv, f"tracking.uri={tmp_path}/mlruns"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.root" in err[0] and "no images" in err[0]

"""lit_mia/training.py: the Trainer every target fit uses."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from lit_mia.training import DestroyGlooGroupAtExit

SCRIPT = """
import atexit, sys, tempfile
import torch.distributed as dist
from lit_mia import training

destroy = training._destroy_process_group
def counted():  # what the callback registers, made visible
    print("destroy handler ran", flush=True)
    destroy()
training._destroy_process_group = counted

# registered first, so it runs last (atexit is LIFO): what is left when the interpreter ends
atexit.register(lambda: print("initialized at exit:", dist.is_initialized(), flush=True))
if sys.argv[1] == "gloo":
    store = tempfile.mkdtemp() + "/store"
    dist.init_process_group("gloo", init_method="file://" + store, rank=0, world_size=1)
cb = training.DestroyGlooGroupAtExit()
for _ in range(int(sys.argv[2])):  # several fits in one worker
    cb.setup(None, None, "fit")
"""


def _run(mode: str, fits: int) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), mode, str(fits)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return out.stdout


@pytest.mark.parametrize("fits", [1, 3])
def test_gloo_group_is_destroyed_before_exit_by_one_handler(fits: int) -> None:
    out = _run("gloo", fits)
    assert out.count("destroy handler ran") == 1, out  # one handler however many fits
    assert "initialized at exit: False" in out, out  # destroyed before the interpreter ended


def test_gloo_group_left_alive_without_the_callback() -> None:
    """The check above can fail: without the callback the group is still up at exit."""
    assert "initialized at exit: True" in _run("gloo", 0)


def test_without_a_group_nothing_is_registered() -> None:
    assert "destroy handler ran" not in _run("none", 2)
    DestroyGlooGroupAtExit().setup(None, None, "fit")  # in-process, no group: no error

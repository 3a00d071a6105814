"""lit_mia.plots: each function returns a Figure with the expected axes and saves to PNG."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from lit_mia import plots
from lit_mia.errors import ConfigError


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png_ok(fig: Figure, path) -> None:
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_loss_histogram(tmp_path):
    rng = np.random.default_rng(0)
    fig = plots.loss_histogram(
        rng.exponential(0.2, 300), rng.exponential(1.0, 200), bins=30, title="t"
    )
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "cross-entropy loss"
    assert ax.get_ylabel() == "density"
    assert ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["members", "non-members"]
    assert len(ax.patches) == 60  # 30 bars per histogram, shared bins
    # density: each histogram has unit area
    for bars in (ax.patches[:30], ax.patches[30:]):
        area = sum(p.get_height() * p.get_width() for p in bars)
        assert area == pytest.approx(1.0)
    _png_ok(fig, tmp_path / "hist.png")


def test_loss_histogram_constant_losses(tmp_path):
    fig = plots.loss_histogram(np.zeros(5), np.zeros(3), bins=5)
    _png_ok(fig, tmp_path / "hist0.png")


def test_roc_loglog(tmp_path):
    rng = np.random.default_rng(0)
    m = np.array([1] * 200 + [0] * 200)
    curves = {
        "strong": (rng.normal(size=400) + 2.0 * m, m),
        "chance": (rng.normal(size=400), m),
    }
    fig = plots.roc_loglog(curves, title="ROC")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "false positive rate"
    assert ax.get_ylabel() == "true positive rate"
    assert ax.get_xlim() == pytest.approx((1e-4, 1.0))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("strong (AUC=0.9")
    assert labels[1].startswith("chance (AUC=0.")
    assert labels[-1] == "chance"
    assert len(ax.lines) == 3  # two curves and the diagonal
    _png_ok(fig, tmp_path / "roc.png")


def test_roc_loglog_extends_to_one_over_n():
    m = np.array([1] * 20000 + [0] * 20000)
    s = np.arange(40000.0)[::-1]
    fig = plots.roc_loglog({"perfect": (s, m)})
    assert fig.axes[0].get_xlim()[0] == pytest.approx(1 / 20000)


def test_comparison_bar(tmp_path):
    table = {
        "natural": {"auc": 0.6, "acc_best": 0.57},
        "pgd": {"auc": 0.8, "acc_best": 0.75},
        "ibp": {"auc": 0.55},
    }
    fig = plots.comparison_bar(table, ["auc", "acc_best"], title="summary")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["natural", "pgd", "ibp"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["auc", "acc_best"]
    heights = [p.get_height() for p in ax.patches]
    assert heights[:3] == [0.6, 0.8, 0.55]
    assert heights[3:5] == [0.57, 0.75]
    assert np.isnan(heights[5])
    _png_ok(fig, tmp_path / "bar.png")


def test_bad_plot_input():
    with pytest.raises(ConfigError):
        plots.roc_loglog({})
    with pytest.raises(ConfigError):
        plots.roc_loglog({"x": ([0.1, 0.2], [1, 1])})
    with pytest.raises(ConfigError, match="acc_bets"):
        plots.comparison_bar({"a": {"auc": 0.5}}, ["auc", "acc_bets"])
    with pytest.raises(ConfigError):
        plots.comparison_bar({}, ["auc"])
    with pytest.raises(ConfigError, match="NaN"):
        plots.loss_histogram([float("nan")], [1.0])

"""Figures on synthetic cells: what each figure draws, its files, one shared color scale, diverged
configurations marked."""

import itertools
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from workflow_helpers import drawn_png, job_files

from genboost.analysis import figures
from genboost.analysis.figures import (
    best_configurations,
    heatmap_grid,
    learning_curves,
    lr_curves,
    mean_curve,
)

LRS, WDS, RHOS, SEEDS = [1e-4, 1e-3, 1e-2], [0.0, 1e-3], [0.0, 0.05], range(3)
DIVERGED = {("sgd", 1e-2, 0.0, 0.0), ("adam", 1e-2, 1e-3, 0.05)}  # (optimizer, lr, wd, rho) with a diverged seed


def synthetic(scale=1.0, experiment="main"):
    rng = np.random.default_rng(0)
    rows = []
    for opt, lr, wd, rho, s in itertools.product(["sgd", "adam"], LRS, WDS, RHOS, SEEDS):
        mse = 0.7 + scale * abs(math.log10(lr) + 3) + 0.1 * (opt == "adam") - 0.05 * (rho > 0) + rng.normal(0, 0.01)
        div = (opt, lr, wd, rho) in DIVERGED and s == 1
        rows.append(
            dict(experiment=experiment, optimizer=opt, lr=lr, wd=wd, rho=rho, seed=s, test_mse=math.nan if div else mse,
                 train_mse=math.nan if div else mse - 0.2, diverged=div)
        )  # fmt: skip
    return pd.DataFrame(rows)


PNG_DPI, PDF_POINTS = 150, 72  # figures.save's resolution; a PDF page's points per inch


def assert_files_show(fig: Figure, png: Path, pdf: Path) -> None:
    """The PNG decodes to the figure drawn at 150 dpi (not one flat colour); the PDF is one page of the figure's
    size; no temporary file is left behind."""
    width, height = fig.get_size_inches()
    assert drawn_png(png).shape[:2] == (round(height * PNG_DPI), round(width * PNG_DPI))
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 1
    (box,) = re.findall(rb"/MediaBox\s*\[([^\]]*)\]", data)
    assert [float(v) for v in box.split()] == pytest.approx([0, 0, width * PDF_POINTS, height * PDF_POINTS])
    assert not list(png.parent.glob(".*.tmp"))


def panels(fig):
    return [ax for ax in fig.axes if ax.images]


@pytest.fixture(scope="module")
def heatmap(tmp_path_factory) -> tuple[Figure, Path, Path]:
    """The heatmap of `synthetic()`, drawn once for the tests that only read it: the figure, its PNG, its PDF."""
    folder = tmp_path_factory.mktemp("heatmap")
    return heatmap_grid(synthetic(), folder / "h.png", folder / "h.pdf"), folder / "h.png", folder / "h.pdf"


def test_heatmap_grid_files_shared_scale_and_marks(heatmap):
    cells = synthetic()
    fig, png, pdf = heatmap
    assert_files_show(fig, png, pdf)
    axes = panels(fig)
    assert len(axes) == 2 * len(RHOS)
    (bar,) = [ax for ax in fig.axes if not ax.images]  # the colour bar, labelled
    assert bar.get_ylabel() == "mean test MSE (lower is better)"
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax, type(ax.images[0].norm)) for ax in axes}
    assert len(norms) == 1  # one color scale for every panel
    vmin, vmax, kind = norms.pop()
    ok = cells[~cells.set_index(["optimizer", "lr", "wd", "rho"]).index.isin(DIVERGED)]
    means = ok.groupby(["optimizer", "lr", "wd", "rho"])["test_mse"].mean()
    assert (vmin, vmax) == pytest.approx((means.min(), means.max())) and kind is not LogNorm
    marked = [p for ax in axes for p in ax.patches if p.get_gid() == "diverged"]
    assert len(marked) == len(DIVERGED) and all(p.get_hatch() for p in marked)
    assert sum(p.get_gid() == "best" for ax in axes for p in ax.patches) == 1
    # Diverged cells carry no number; every other cell shows its mean.
    assert sum(len(ax.texts) for ax in axes) == 2 * len(LRS) * len(WDS) * len(RHOS) - len(DIVERGED)


def test_diverged_mark_position(heatmap):
    fig = heatmap[0]
    # Rows are optimizers in sorted order (adam, sgd), columns rho; inside, y = lr index, x = wd index.
    sgd_no_sam = fig.axes[len(RHOS)]
    assert sgd_no_sam.get_title() == "SGD, no SAM"
    (mark,) = [p for p in sgd_no_sam.patches if p.get_gid() == "diverged"]
    assert mark.get_xy() == (WDS.index(0.0) - 0.5, LRS.index(1e-2) - 0.5)


def test_wide_range_gets_a_log_scale(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "save", lambda *_: None)  # what is drawn, not saved (the heatmap's tests check that)
    fig = heatmap_grid(synthetic(scale=100.0), tmp_path / "h.png", tmp_path / "h.pdf")
    assert all(isinstance(ax.images[0].norm, LogNorm) for ax in panels(fig))
    assert len({id(ax.images[0].norm) for ax in panels(fig)}) == 1


def test_same_data_same_bytes(heatmap, tmp_path):
    _, png, pdf = heatmap
    heatmap_grid(synthetic(), tmp_path / "h.png", tmp_path / "h.pdf")
    assert (tmp_path / "h.png").read_bytes() == png.read_bytes() and (
        tmp_path / "h.pdf"
    ).read_bytes() == pdf.read_bytes()


def test_failed_write_leaves_neither_file(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with pytest.raises(OSError):
        heatmap_grid(synthetic(), tmp_path / "h.png", tmp_path / "blocker" / "h.pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_one_experiment_only(tmp_path):
    cells = pd.concat([synthetic(), synthetic(experiment="other")])
    with pytest.raises(ValueError, match="one experiment"):
        heatmap_grid(cells, tmp_path / "h.png", tmp_path / "h.pdf")
    assert not list(tmp_path.iterdir())


def test_lr_curves(tmp_path):
    fig = lr_curves(synthetic(), tmp_path / "l.png", tmp_path / "l.pdf")
    assert_files_show(fig, tmp_path / "l.png", tmp_path / "l.pdf")
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert len(axes) == 2 * len(RHOS) and all(ax.get_xscale() == "log" for ax in axes)
    assert all(len(ax.collections) == len(WDS) for ax in axes)  # one seed band per wd
    marks = [line for ax in axes for line in ax.lines if line.get_gid() == "diverged"]
    assert sorted(float(line.get_xdata()[0]) for line in marks) == [1e-2, 1e-2]
    sgd = next(ax for ax in axes if ax.get_title() == "SGD, no SAM")
    wd0 = sgd.lines[0]  # the wd=0 mean line: no point at the diverged lr
    assert list(wd0.get_xdata()) == LRS[:-1]


def test_best_configurations_and_learning_curves(tmp_path):
    best = best_configurations(synthetic())
    assert [(b["optimizer"], b["rho"] > 0) for b in best] == [("adam", False), ("adam", True), ("sgd", False),
                                                               ("sgd", True)]  # fmt: skip
    assert all(b["lr"] == 1e-3 for b in best) and best[3]["label"].startswith("SGD, SAM ρ=0.05, lr=0.001")
    records = [
        {"curve": [{"epoch": e, "train_mse": 1.0 / e + s, "test_mse": 2.0 / e + s} for e in range(1, 31)]}
        for s in (0.1, 0.3)
    ]
    curve = mean_curve(best[0]["label"], records)
    assert curve["epochs"] == list(range(1, 31)) and curve["train_mse"][0] == pytest.approx(1.2)
    curves = [curve, {**curve, "label": "other", "test_mse": [v * 1.1 for v in curve["test_mse"]]}]
    fig = learning_curves(curves, tmp_path / "c.png", tmp_path / "c.pdf")
    assert_files_show(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    train_ax, test_ax = fig.axes[:2]
    assert len(train_ax.lines) == len(test_ax.lines) == 2
    assert list(test_ax.lines[1].get_ydata()) == pytest.approx(curves[1]["test_mse"])


def test_bad_curves_are_refused(tmp_path):
    with pytest.raises(ValueError, match="different epochs"):
        mean_curve("x", [{"curve": [{"epoch": 1, "train_mse": 1, "test_mse": 1}]}, {"curve": []}])
    with pytest.raises(ValueError, match="differ in length"):
        learning_curves([{"label": "x", "epochs": [1, 2], "train_mse": [1], "test_mse": [1, 2]}], tmp_path / "c.png",
                        tmp_path / "c.pdf")  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_drawing_figures_does_not_import_scipy(fresh_process_imports):
    """The figures job needs no confidence interval: it stays off scipy (~0.6 s of import per job)."""
    assert fresh_process_imports["scipy"] is False


def write_figures(*args):
    """experiment_figures.write_figures, imported here: it draws the measures too, which imports scipy, and the
    test above runs this module in a process that must stay off scipy."""
    from genboost.analysis.experiment_figures import write_figures as write

    return write(*args)


def metrics_files(tmp_path, optimizers, lrs, wds, rhos, seeds, diverged):
    """metrics.json records as train jobs write them (a diverged model: null metrics and curve values)."""
    paths = []
    for i, (opt, lr, wd, rho, s) in enumerate(itertools.product(optimizers, lrs, wds, rhos, seeds)):
        mse = None if diverged else 0.8 + lr + 0.01 * s
        curve = [{"epoch": e, "train_mse": mse and mse / e, "test_mse": mse and 2 * mse / e} for e in (2, 4)]
        config = dict(optimizer=opt, lr=lr, wd=wd, rho=rho, seed=s, wd_mode="coupled", shuffle_labels=False)
        record = dict(config=config, test_mse=mse, train_mse=mse and mse - 0.1, test_accuracy=None,
                      train_accuracy=None, diverged=diverged, diverged_step=3 if diverged else None, epochs=4,
                      steps=8, curve=curve)  # fmt: skip
        paths.append(tmp_path / f"m{i}.json")
        paths[-1].write_text(json.dumps(record))
    return [str(p) for p in paths]


def figure_paths(tmp_path):
    names = ("heatmap", "lr_curves", "learning_curves")
    return {f"{n}_{e}": str(tmp_path / f"{n}.{e}") for n in names for e in ("png", "pdf")}


@pytest.fixture
def saved(monkeypatch) -> dict[Path, Figure]:
    """file -> the Figure saved to it, for every Figure.savefig call while the test runs (files.atomic_path's
    temporary `.<name>.<random>.tmp` counts as <name>): what a figures job drew, to inspect."""
    figures, savefig = {}, Figure.savefig

    def recording(fig, fname, *args, **kwargs):
        savefig(fig, fname, *args, **kwargs)
        path = Path(fname)
        figures[path.with_name(re.sub(r"^\.(.+)\.[^.]*\.tmp$", r"\1", path.name))] = fig

    monkeypatch.setattr(Figure, "savefig", recording)
    return figures


def written_figures(saved: dict, tmp_path: Path) -> dict[str, Figure]:
    """figure name -> the Figure a figures job saved as its PNG and PDF (each checked to show that figure)."""
    out = {}
    for name in ("heatmap", "lr_curves", "learning_curves"):
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        assert saved[png] is saved[pdf]
        assert_files_show(saved[png], png, pdf)
        out[name] = saved[png]
    return out


def test_a_study_whose_every_model_diverged_draws_its_figures_and_says_so(tmp_path, saved):
    grid = (["sgd", "adam"], [50.0], [0.0, 1e-3], [0.0, 0.05], [0, 1])
    metrics = metrics_files(tmp_path, *grid, diverged=True)
    write_figures("main", job_files(metrics, tmp_path), figure_paths(tmp_path))
    drawn = written_figures(saved, tmp_path)
    note = "Every model diverged (16 of 16): nothing to plot"
    heat = drawn["heatmap"]
    marks = [p.get_gid() for ax in panels(heat) for p in ax.patches]
    assert marks == ["diverged"] * 8 and note in heat.get_suptitle()
    assert len(heat.axes) == 4 and not any(ax.texts for ax in heat.axes)  # no colour bar or value made up
    lines = drawn["lr_curves"]
    assert note in lines.get_suptitle() and lines.axes[0].get_xlim()[0] < 50.0 < lines.axes[0].get_xlim()[1]
    assert not [
        line for ax in lines.axes for line in ax.lines if line.get_gid() != "diverged" and len(line.get_xdata())
    ]
    empty = drawn["learning_curves"]
    assert (
        note in empty.get_suptitle()
        and [t.get_text() for ax in empty.axes for t in ax.texts] == ["no curve to plot"] * 2
        and not any(ax.lines for ax in empty.axes)
    )


def test_a_study_with_one_configuration_and_one_seed_draws_its_figures(tmp_path, saved):
    metrics = metrics_files(tmp_path, ["adam"], [1e-3], [0.0], [0.0], [0], diverged=False)
    write_figures("main", job_files(metrics, tmp_path), figure_paths(tmp_path))
    drawn = written_figures(saved, tmp_path)
    heat = drawn["heatmap"]
    assert [t.get_text() for ax in panels(heat) for t in ax.texts] == ["0.801"] and "\n" not in heat.get_suptitle()
    (curve,) = drawn["lr_curves"].axes[0].lines
    assert list(curve.get_xdata()) == [1e-3] and list(curve.get_ydata()) == pytest.approx([0.801])
    train, test = ([line.get_ydata() for line in ax.lines] for ax in drawn["learning_curves"].axes[:2])
    assert train == [pytest.approx([0.801 / 2, 0.801 / 4])] and test == [pytest.approx([0.801, 0.801 / 2])]
    with pytest.raises(ValueError, match="no curves to plot"):
        learning_curves([], tmp_path / "c.png", tmp_path / "c.pdf")


def one_panel(means: list[list[float]]) -> pd.DataFrame:
    """One seed of SGD without SAM whose test MSE at (LRS[i], WDS[j]) is means[i][j]."""
    cell = dict(experiment="main", optimizer="sgd", rho=0.0, seed=0, diverged=False)
    rows = [
        {**cell, "lr": lr, "wd": wd, "test_mse": v, "train_mse": v}
        for lr, row in zip(LRS, means, strict=False)
        for wd, v in zip(WDS, row, strict=True)
    ]
    return pd.DataFrame(rows)


def heatmap_texts(cells, tmp_path, monkeypatch) -> list[str]:
    monkeypatch.setattr(figures, "save", lambda *_: None)  # what is drawn, not saved
    fig = heatmap_grid(cells, tmp_path / "h.png", tmp_path / "h.pdf")
    return [t.get_text() for ax in panels(fig) for t in ax.texts]


def test_heatmap_numbers_tell_neighbouring_cells_apart(tmp_path, monkeypatch):
    """Cells side by side (14.71, 14.74) or one above the other (14.74, 14.738) get as many digits as it takes to
    differ; cells that differ at 3 digits keep 3; equal means may read the same."""
    texts = heatmap_texts(one_panel([[14.71, 14.74], [14.8, 14.738]]), tmp_path, monkeypatch)
    assert texts == ["14.71", "14.74", "14.8", "14.738"]  # "g" drops trailing zeros
    assert heatmap_texts(one_panel([[14.71, 14.94], [15.8, 14.5]]), tmp_path, monkeypatch) == [
        "14.7", "14.9", "15.8", "14.5"
    ]  # fmt: skip
    assert heatmap_texts(one_panel([[2.5, 2.5], [0.8011, 0.8012]]), tmp_path, monkeypatch) == [
        "2.5", "2.5", "0.8011", "0.8012"
    ]  # fmt: skip
    most = figures.LABEL_DIGITS[-1]
    assert figures.label_digits([pd.DataFrame([[1.0, 1.0 + 10.0 ** (1 - most)]])]) == most  # at most
    # a pair alike at the most digits reads alike at any, so it asks for no more digits than the others need
    assert figures.label_digits([pd.DataFrame([[1.0, 1.0 + 1e-12, 1.5]])]) == figures.LABEL_DIGITS[0]


def curve_pixels(png: Path, fig: Figure, color) -> int:
    """How many pixels of `color` the PNG shows inside the figure's first axes (its legend is outside them)."""
    image = drawn_png(png)[..., :3]
    x0, y0, x1, y1 = fig.axes[0].get_position().extents
    rows, cols = image.shape[:2]
    inside = image[round((1 - y1) * rows) : round((1 - y0) * rows), round(x0 * cols) : round(x1 * cols)]
    return int((np.abs(inside - np.asarray(color[:3])).max(axis=-1) < 0.05).sum())


def test_a_learning_curve_of_one_or_two_points_is_drawn(tmp_path):
    """A curve of one point (sam_epochs 10, curve_every 10) shows where its legend says; two points get markers
    too; a longer curve is a plain line."""
    one = dict(label="SGD, SAM", epochs=[20], train_mse=[3.0], test_mse=[4.0])  # apart from the others
    two = dict(label="ADAM, SAM", epochs=[10, 20], train_mse=[1.0, 0.5], test_mse=[2.0, 1.0])
    long = dict(label="SGD", epochs=[10, 20, 30], train_mse=[1.0, 0.8, 0.6], test_mse=[2.0, 1.5, 1.2])
    fig = learning_curves([one, two, long], tmp_path / "c.png", tmp_path / "c.pdf")
    assert [line.get_marker() for line in fig.axes[0].lines] == ["o", "o", "None"]
    assert curve_pixels(tmp_path / "c.png", fig, fig.axes[0].lines[0].get_color()) > 10

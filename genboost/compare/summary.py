"""The study's conclusions, computed from the cell results: nothing here is typed in."""

from __future__ import annotations

import math

import pandas as pd
from tabulate import tabulate

from genboost.analysis import granulated, implicit_bias, stats_report, wd_and_norm
from genboost.analysis.best import best
from genboost.analysis.formats import number, sam_label
from genboost.analysis.stats import config_columns, sweep_axes
from genboost.analysis.tables import cell_means, measure_columns
from genboost.compare import scale
from genboost.compare.scale import MEANING, rel_text, with_relative
from genboost.compare.talk import shuffled_labels, talk_section, unchecked_lines
from genboost.config.optimizers import in_order, label
from genboost.config.study import CONFIG_AXES, fmt_number, fmt_value
from genboost.config.sweep import SWEEPABLE


def describe(row) -> str:
    lr, wd = fmt_number(row["lr"]), fmt_number(row["wd"])
    swept = "".join(f", {k}={fmt_value(k, v)}" for k, v in swept_values(row).items())
    return f"{row['optimizer'].upper()}, lr={lr}, wd={wd}, {sam_label(row['rho'])}{swept}"


def swept_values(row) -> dict:
    """The values of the settings its experiment sweeps (genboost.config.sweep) in a row of means; `epochs`, a column
    of every row here, is said apart."""
    return {k: row[k] for k in SWEEPABLE if k in row.index and k != "epochs" and not pd.isna(row[k])}


def score(row) -> str:
    spread = "" if math.isnan(row["std"]) else f" ± {row['std']:.4f}"  # one seed: no std
    return f"{row['mean']:.4f}{spread} (n={int(row['seeds'])}{rel_text(row)})"


def no_best(means: pd.DataFrame) -> str:
    """Why `best` found none: every model diverged, or every configuration lost a seed."""
    models, lost = int(means["seeds"].sum()), int(means["diverged"].sum())
    if lost == models:
        return f"Every model diverged ({lost} of {models}): nothing to compare."
    return f"Every configuration has a diverged seed ({lost} of {models} models diverged): none has a mean test MSE."


def change(new: float, old: float) -> str:
    """'lowers ... by 0.0123 (4.5%)' from two mean test MSEs."""
    delta = new - old
    verb = "lowers" if delta < 0 else "raises" if delta > 0 else "leaves unchanged"
    pct = f" ({abs(delta) / old:.1%})" if old else ""
    return f"{verb} the test MSE by {abs(delta):.4f}{pct}"


def best_section(name: str, means: pd.DataFrame) -> list[str]:
    lines = [f"## Best configurations: {name}", ""]
    overall = best(means)
    if overall is None:
        return [*lines, no_best(means), ""]
    lines.append(f"- Overall: **{describe(overall)}**: test MSE {score(overall)}")
    for opt, sub in means.groupby("optimizer"):
        b = best(sub)
        lines.append(
            f"- {opt.upper()}: {describe(b)}: {score(b)}" if b is not None else f"- {opt.upper()}: all diverged"
        )
    diverged = int((means["diverged"] > 0).sum())
    lines.append(
        f"- Configurations with a diverged seed: {diverged} of {len(means)} (shown as 'diverged' in the tables)"
    )
    return [*lines, ""]


def effect_section(name: str, means: pd.DataFrame) -> list[str]:
    """SAM vs no SAM and WD vs no WD at each optimizer's best lr."""
    lines = [f"## Does SAM or weight decay help? ({name}, at each optimizer's best lr)", ""]
    if best(means) is None:
        return [*lines, no_best(means), ""]
    for opt, sub in means.groupby("optimizer"):
        b = best(sub)
        if b is None:
            continue
        at_lr = sub[sub["lr"] == b["lr"]]
        for key, value in swept_values(b).items():  # the best's swept values: one configuration per rho x wd
            at_lr = at_lr[at_lr[key] == value]
        swept = "".join(f", {k}={fmt_value(k, v)}" for k, v in swept_values(b).items())
        lines.append(f"### {opt.upper()} at lr={fmt_number(b['lr'])}{swept}")
        lines.append("")
        grid = at_lr.pivot(index="rho", columns="wd", values="mean")
        rows = [
            [fmt_number(r), *(number(grid.loc[r, w], missing="diverged") for w in grid.columns)] for r in grid.index
        ]
        lines.append(
            tabulate(
                rows,
                headers=["rho \\ wd", *(fmt_number(w) for w in grid.columns)],
                tablefmt="github",
                disable_numparse=True,
            )
        )
        lines.append("")
        lines += _comparison("SAM", at_lr, at_lr["rho"] > 0)
        lines += _comparison("Weight decay", at_lr, at_lr["wd"] > 0)
        lines.append("")
    return lines


def _comparison(label: str, at_lr: pd.DataFrame, on: pd.Series) -> list[str]:
    if on.all() or not on.any():
        return [f"- {label}: nothing to compare (no configuration {'without' if on.all() else 'with'} it)"]
    with_, without = best(at_lr[on]), best(at_lr[~on])
    if with_ is None or without is None:
        side = "with" if with_ is None else "without"
        return [f"- {label}: not comparable here (every configuration {side} it has a diverged seed)"]
    return [
        f"- {label}: the best with it ({describe(with_)}: {with_['mean']:.4f}{rel_text(with_)}) "
        f"{change(with_['mean'], without['mean'])} against the best without it ({describe(without)}: "
        f"{without['mean']:.4f}{rel_text(without)})"
    ]


def optimizer_section(name: str, means: pd.DataFrame) -> list[str]:
    heading = f"## {' vs '.join(label(o) for o in in_order(means['optimizer']))} ({name})"
    bests = {opt: best(sub) for opt, sub in means.groupby("optimizer")}
    lost = sorted(k.upper() for k, v in bests.items() if v is None)
    bests = {k: v for k, v in bests.items() if v is not None}
    if not bests or len(bests) + len(lost) < 2:
        return []  # one optimizer, or none left: the best section says so
    if lost:
        return [
            heading,
            "",
            f"- Not comparable: every {lost[0]} configuration has a diverged seed.",
            "",
        ]
    order = sorted(bests, key=lambda k: bests[k]["mean"])
    winner, runner = bests[order[0]], bests[order[1]]
    return [
        heading,
        "",
        f"- {order[0].upper()} wins: best {winner['mean']:.4f}{rel_text(winner)} ({describe(winner)}) vs "
        f"{order[1].upper()} best {runner['mean']:.4f}{rel_text(runner)} ({describe(runner)}); "
        f"{change(winner['mean'], runner['mean'])}.",
        "",
    ]


def versus_section(name: str, means: pd.DataFrame, base_name: str, base: pd.DataFrame) -> list[str]:
    """Another experiment against the base one: its best, and the base's best over the same optimizer x rho."""
    b = best(means)
    if b is None:
        return [f"## {name} vs {base_name}", "", no_best(means), ""]
    same = base[(base["optimizer"] == b["optimizer"]) & (base["rho"] == b["rho"])]
    lines = [f"## {name} vs {base_name}", "", f"- Best of {name}: {describe(b)}, {int(b['epochs'])} epochs: {score(b)}"]
    ref = best(same)
    if ref is not None:
        lines.append(
            f"- Best of {base_name} with the same optimizer and rho ({describe(ref)}, {int(ref['epochs'])} epochs): "
            f"{score(ref)}; {name} {change(b['mean'], ref['mean'])}"
        )
    overall = best(base[base["optimizer"] == b["optimizer"]])
    if overall is not None:
        lines.append(
            f"- Best {b['optimizer'].upper()} of {base_name} overall: {describe(overall)}: {score(overall)}; "
            f"{name} {change(b['mean'], overall['mean'])}"
        )
    return [*lines, ""]


def summarize(
    cells: pd.DataFrame,
    experiments: list[str],
    setups: dict[str, str | None] | None = None,
    datasets: dict[str, dict] | None = None,
    baseline: str | None = None,
    confirmations: dict[str, tuple[pd.DataFrame, float]] | None = None,
) -> str:
    """The Markdown summary of the whole study: `baseline` (config key baseline; needed where there are several
    experiments) is the base of comparisons, the others follow in the order of `experiments`. `setups`
    (experiments compared with the talk's main tables -> the second chance of their setup) and `datasets` (the
    other experiments checked on their own cells: experiment -> its dataset and second chance;
    genboost.config.study.Study.judged_on_own_cells) are the columns of the talk's conclusions; `confirmations`
    (experiment -> its picks' models on fresh seeds and the margin in test MSE) add the matrix of their
    confirmation."""
    means = with_relative(cell_means(cells), cells)
    if "epochs" not in means:  # else epochs is swept, a column of the means already
        config = config_columns(cells)
        means = means.merge(cells.groupby(config, dropna=False)["epochs"].max().reset_index(), on=config)
    per_exp = {e: means[means["experiment"] == e] for e in experiments}
    base_name = _baseline(experiments, baseline)
    said = f"{len(cells)} trained models; test MSE is the mean over seeds (± std)."
    lines = ["# genboost summary", "", said, "", MEANING, ""]
    lines += talk_section(cells, setups or {}, datasets, confirmations)
    notes = unchecked_lines(cells, experiments, {*(setups or {}), *(datasets or {})})
    true_labels = [e for e in experiments if not shuffled_labels(cells[cells["experiment"] == e]).all()]
    notes += scale.easy_split_lines(cells, true_labels)  # shuffled labels: train and test labels differ anyway
    lines += [*notes, ""] if notes else []
    lines += best_section(base_name, per_exp[base_name])
    lines += effect_section(base_name, per_exp[base_name])
    lines += optimizer_section(base_name, per_exp[base_name])
    for name in (e for e in experiments if e != base_name):
        sub = cells[cells["experiment"] == name]
        if shuffled_labels(sub).all():
            lines += random_label_section(name, per_exp[name], base_name, per_exp[base_name])
        else:
            lines += versus_section(name, per_exp[name], base_name, per_exp[base_name])
    for name in experiments:  # [] for an experiment that does not sweep batch_size
        lines += implicit_bias.section(name, cells[cells["experiment"] == name])
        lines += wd_and_norm.section(name, cells[cells["experiment"] == name])  # [] unless it sweeps norm
    measures = measure_columns(cells)
    real = cells[~shuffled_labels(cells)]
    lines += ["", stats_report.stats_markdown(real, measures=measures)]
    axes = [a for a in (*CONFIG_AXES, *sweep_axes(real)) if real[a].nunique() > 1]
    if measures and axes:
        lines += ["", granulated.generalization_markdown(real, measures, axes)]
    return "\n".join(lines).rstrip() + "\n"


def _baseline(experiments: list[str], baseline: str | None) -> str:
    if baseline is None and len(experiments) == 1:
        return experiments[0]
    if baseline not in experiments:
        raise ValueError(f"summary: the baseline {baseline!r} is not one of the experiments {experiments}")
    return baseline


def random_label_section(name: str, means: pd.DataFrame, base_name: str, base: pd.DataFrame) -> list[str]:
    """The random-label control: how far the model fits noise, and its test MSE then."""
    fit = best(means, "train_mean")  # the lowest train MSE
    lines = [f"## {name}: random-label control", ""]
    if fit is None:
        return [*lines, "Every configuration diverged.", ""]
    lines.append(
        f"- Lowest train MSE on shuffled labels: {fit['train_mean']:.4f} ({describe(fit)}), "
        f"with test MSE {fit['mean']:.4f}{rel_text(fit)} on the real test labels"
    )
    b = best(base)
    if b is not None:
        lines.append(f"- The best of {base_name} on real labels: test MSE {b['mean']:.4f}{rel_text(b)} ({describe(b)})")
    return [*lines, ""]

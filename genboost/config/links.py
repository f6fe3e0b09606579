"""The config keys that name other experiments, checked against the study's enabled experiments (each a
`genboost.config.study.Experiment`): a run's `continues` and the summary's `baseline`; and the one that names a
published table, `reference_experiment`, checked against the experiment's dataset. With them, the order of
the experiments in the config means nothing."""

from __future__ import annotations

from collections.abc import Sequence

from genboost.config.settings import experiment_defaults
from genboost.errors import ConfigError


def check_continues(experiment, specs: dict, experiments: Sequence) -> None:
    """`continues` names another experiment of the config (`specs`) that continues none, of the same setup when
    enabled: so a run goes on only from a shorter run of itself, and the jobs' dependencies form no cycle."""
    name, target = experiment.name, experiment.continues
    if not target:
        return
    key = f"config key experiments.{name}.continues"
    if target == name or target not in specs:
        others = sorted(n for n in specs if n != name)
        raise ConfigError(f"{key}: {target!r} is not another experiment of the config; one of {others}")
    if specs[target].get("continues"):
        raise ConfigError(f"{key}: {target!r} itself continues {specs[target]['continues']!r}; name the first run")
    enabled = {e.name: e for e in experiments}
    if target not in enabled:  # its runs would go on from nothing, or plan the other's jobs without a word
        raise ConfigError(
            f"{key}: {name!r} continues {target!r}, which is switched off (experiments.{target}.enabled: false); "
            f"switch {target!r} on, or {name!r} off"
        )
    if enabled[target].setup() != experiment.setup():
        raise ConfigError(
            f"{key}: {target!r} has another setup (preprocessing, model or train settings besides epochs): "
            f"a longer run of it must differ in its epochs only"
        )


def check_reference(experiment) -> None:
    """An experiment compared with the published tables (its `reference_experiment` is one of theirs) runs on the
    talk's data, the schema's default `dataset`: test MSEs on other data, on another label scale, say nothing
    against the talk's numbers."""
    talk = experiment_defaults()["dataset"]
    if experiment.dataset != talk:
        name = experiment.name
        raise ConfigError(
            f"config key experiments.{name}.reference_experiment: {experiment.reference_experiment!r} is a table of "
            f"the talk, on the {talk} data (datasets.{talk}), but {name!r} runs on the {experiment.dataset} data "
            f"(experiments.{name}.dataset): its test MSE cannot be compared with the talk's; set "
            f"reference_experiment: none (the summary still checks the talk's conclusions on its own cells)"
        )


def baseline(name: str | None, experiments: Sequence, specs: dict | None = None) -> str:
    """The summary's baseline: the one experiment of a study of one (nothing to compare: the key is not read),
    else the enabled experiment that config key baseline names (`specs`: the config's experiments, to say when
    it names one switched off)."""
    names = [e.name for e in experiments]
    if len(names) == 1:
        return names[0]
    if name not in names:
        given = f"{name!r} is not an enabled experiment" if name else "not given"
        if name in (specs or {}):
            given = f"{name!r} is switched off (experiments.{name}.enabled: false)"
        raise ConfigError(
            f"config key baseline: {given}; name the experiment the summary compares the others with, one of {names}"
        )
    return name


def check_fresh_seeds(fresh: tuple[int, ...], grid_seeds: dict[str, tuple[int, ...]]) -> None:
    """The confirmation stage's seeds share none with the grid seeds of the experiments it confirms (name -> its
    grid seeds): its verdicts must come from seeds the selection never saw."""
    for name, seeds in grid_seeds.items():
        shared = sorted(set(fresh) & set(seeds))
        if shared:
            raise ConfigError(
                f"config key confirm.first_seed: the fresh seeds {fresh[0]}..{fresh[-1]} include seed {shared[0]}, "
                f"a grid seed of experiments.{name}.seeds; set confirm.first_seed above {max(seeds)}"
            )

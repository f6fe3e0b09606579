"""Settings swept as axes of an experiment (config key `experiments.<name>.sweep`), beside optimizer, lr, wd,
rho and seed: `sweep: {batch_size: [16, 32, 64]}` trains every cell of the grid at each batch size.

Each swept setting adds a `key=value` level to the run paths (before `seed=`), a column to cells.csv and a
level to the tables' names; an experiment that sweeps nothing has exactly the paths it always had. Plain
values only (no pandas, no torch): the Snakefile imports this through `genboost.config.study`.
"""

from __future__ import annotations

from dataclasses import fields

from genboost.config.cell import SETTINGS, Cell
from genboost.errors import ConfigError

# What an experiment may sweep: every setting of the cell (the `train` keys and `hidden`, from
# `model.hidden`) plus `sam_epochs`, a SAM cell's `epochs`. Not the job keys (device, threads, pack):
# they decide how a job runs, not what it computes.
SWEEPABLE = (*SETTINGS, "sam_epochs")
# Settings a train job reads its data with: one job cannot mix them (`genboost.train.model.cells_split`), so they may be
# swept but not packed.
UNPACKABLE = ("dtype", "shuffle_labels")
# Each setting's default, whose type says how its values are written (`epochs` has none: an int).
_TYPES = {**{f.name: f.default for f in fields(Cell) if f.name in SETTINGS}, "epochs": 0, "sam_epochs": 0}
_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[-+][0-9]+)?"


def fmt_number(x: float | int) -> str:
    """Canonical text of a grid value, used in paths: 3e-05 and 0.00003 give the same string."""
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def fmt_value(axis: str, value) -> str:
    """Canonical text of an axis value in paths and names: numbers as `fmt_number`, strings as they are,
    booleans as true/false, a tuple (hidden widths, Adam's betas) joined by "x" (64x64)."""
    if hasattr(value, "item"):  # a numpy scalar from a DataFrame
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "x".join(fmt_number(v) for v in value)
    return fmt_number(value)


def level_of(cell: Cell, key: str):
    """The value of a swept setting in a cell (`sam_epochs` is a SAM cell's `epochs`)."""
    return cell.epochs if key == "sam_epochs" else getattr(cell, key)


def config_level(config: dict, key: str):
    """`level_of` for a cell's config as a metrics.json records it (tuples as lists)."""
    return config["epochs"] if key == "sam_epochs" else config[key]


def wildcard_constraint(key: str) -> str:
    """A regex matching only the canonical text of the key's values, so 16 and 16.0 are never two levels."""
    default = _TYPES[key]
    if isinstance(default, bool):
        return "true|false"
    if isinstance(default, int):
        return "0|[1-9][0-9]*"
    if isinstance(default, float):
        return _NUMBER
    if isinstance(default, tuple):
        item = "[1-9][0-9]*" if isinstance(default[0], int) else _NUMBER
        return f"{item}(x{item})*"
    return "[a-z][a-z0-9]*"


def cast(key: str, value):
    """A swept value in its setting's type, so that 0 and 0.0 (or a list and a tuple) are one level."""
    default = _TYPES[key]
    if isinstance(default, tuple):
        return tuple(type(default[0])(v) for v in value)
    return value if isinstance(default, (bool, str)) else type(default)(value)


def levels(name: str, spec: dict) -> dict[str, tuple]:
    """An experiment's swept settings (config key `sweep` of its `spec`), key -> its values in the setting's
    type, checked: a key that is also set as a plain override of the experiment is refused."""
    sweep = spec.get("sweep") or {}
    for key, values in sweep.items():
        if key not in SWEEPABLE:  # the schema refuses it first; this keeps the module safe on its own
            raise ConfigError(f"config key experiments.{name}.sweep.{key}: not a setting; one of {list(SWEEPABLE)}")
        if key in spec:
            raise ConfigError(
                f"config key experiments.{name}: {key} is both set ({spec[key]!r}) and swept ({values!r}); keep one"
            )
    return {key: tuple(cast(key, v) for v in values) for key, values in sweep.items()}


def check(experiment) -> None:
    """What the schema cannot say of a `genboost.config.study.Experiment`'s sweep: it can be packed as asked, and every
    level reaches its cells."""
    if not experiment.sweep:
        return
    _check_pack(experiment.name, experiment.sweep, experiment.train["pack"])
    coordinates = experiment.coordinates()
    cells = [experiment.cell(**c) for c in coordinates]
    _check_reach(experiment.name, cells, [{k: c[k] for k in experiment.sweep} for c in coordinates])


def _check_pack(name: str, sweep: dict, pack) -> None:
    for key in UNPACKABLE:
        if key in sweep and key in pack:
            raise ConfigError(
                f"config key train.pack of experiment {name}: {key} is swept and packed, but a train job reads its "
                f"data once, with one {key}; leave {key} out of pack"
            )


def _check_reach(name: str, cells: list[Cell], coordinates: list[dict]) -> None:
    """Every swept value must reach its cells: a setting a cell does not read (SGD's momentum in an Adam
    cell, `epochs` in a SAM cell) would make its levels one model at several paths."""
    for cell, coords in zip(cells, coordinates, strict=True):
        for key, value in coords.items():
            if fmt_value(key, level_of(cell, key)) != fmt_value(key, value):
                raise ConfigError(
                    f"config key experiments.{name}.sweep.{key}: {_kind(cell, key)} do not read {key} "
                    f"(its value {fmt_value(key, value)} would not change them); sweep it in an experiment without them"
                )


def _kind(cell: Cell, key: str) -> str:
    """The cells that ignore `key`, named by what makes them ignore it (as `Cell.without_unused_settings`)."""
    if key == "wd_norm_params":
        return f"cells with norm {cell.norm}"
    return f"{cell.optimizer} cells {'with' if cell.sam else 'without'} SAM"

"""The cell: one model of the study, as plain values (no torch import, so the Snakefile stays quick to load).

`Cell`'s fields are the one list of training settings: the config's `train` keys, the settings a block of
the engine must share and the settings' defaults are all derived from them (see `genboost.config.study`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from genboost.config.optimizers import unused_settings

# A cell's coordinates in the grid; every other field is a setting shared by the cells of an experiment.
AXES = ("optimizer", "lr", "wd", "rho", "seed")
# The coordinates the engine gives each cell of a block its own (a block shares all the others).
PER_CELL = tuple(a for a in AXES if a != "optimizer")
# Settings that come from elsewhere than the config's `train` section: `epochs` is `train.epochs` or
# `train.sam_epochs` by rho, `hidden` is `model.hidden`, `norm` is `model.norm`.
DERIVED = ("epochs", "hidden", "norm")
# What `model.norm` may be: none, or a LayerNorm (with its affine gain and bias) after each hidden linear layer.
NORMS = ("none", "layer")


@dataclass(frozen=True)
class Cell:
    """One model of the study: its grid coordinates and every setting that determines its result.

    The defaults are the study's where the talk states them and otherwise those of the library it used
    (torch.optim.SGD: no momentum; torch.optim.Adam: betas (0.9, 0.999), eps 1e-8).
    """

    optimizer: str  # a name of genboost.config.optimizers
    lr: float
    wd: float
    rho: float  # 0 means SAM off
    seed: int
    epochs: int
    batch_size: int = 32
    t_max: int = 100
    momentum: float = 0.0  # SGD only
    adam_betas: tuple[float, float] = (0.9, 0.999)  # Adam only
    adam_eps: float = 1e-8  # Adam only
    wd_mode: str = "coupled"  # "coupled" (L2 / Adam) | "decoupled" (AdamW / SGDW)
    sam_adaptive: bool = False  # SAM only
    hidden: tuple[int, ...] = (64, 64)
    norm: str = "none"  # one of NORMS
    wd_norm_params: bool = True  # norm only: whether weight decay also acts on the norm's gain and bias
    dtype: str = "float32"
    flush_denormal: bool = True
    shuffle_labels: bool = False  # a random-label control: train on permuted training labels

    @property
    def sam(self) -> bool:
        return self.rho > 0

    @property
    def normed(self) -> bool:
        """Whether a LayerNorm follows each hidden linear layer."""
        return self.norm != "none"

    def without_unused_settings(self) -> Cell:
        """This cell with the settings its optimizer and SAM do not read at their defaults, so that changing
        (say) SGD's momentum leaves every Adam cell, its store entry and its job as they were (and
        `wd_norm_params` leaves every cell without a norm as it was)."""
        unused = {name: DEFAULTS[name] for name in unused_settings(self.optimizer)}
        if not self.sam:
            unused["sam_adaptive"] = DEFAULTS["sam_adaptive"]
        if not self.normed:
            unused["wd_norm_params"] = DEFAULTS["wd_norm_params"]
        return replace(self, **unused)

    def to_dict(self) -> dict:
        """Plain JSON-able values (tuples become lists)."""
        d = asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Cell:
        d = dict(d)
        d["adam_betas"] = tuple(d["adam_betas"])
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


DEFAULTS = {f.name: f.default for f in fields(Cell) if f.name not in AXES and f.name not in DERIVED}
# The settings an experiment shares by all its cells, in field order.
SETTINGS = tuple(f.name for f in fields(Cell) if f.name not in AXES)

"""The cell: one model of the study, as plain values (no torch import, so the Snakefile stays quick to load)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Cell:
    """One model of the study: its grid coordinates and every setting that determines its result."""

    optimizer: str  # "sgd" | "adam"
    lr: float
    wd: float
    rho: float  # 0 means SAM off
    seed: int
    epochs: int
    batch_size: int = 32
    t_max: int = 100
    momentum: float = 0.9
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    wd_mode: str = "coupled"  # "coupled" (L2 / Adam) | "decoupled" (AdamW / SGDW)
    sam_adaptive: bool = False
    hidden: tuple[int, ...] = (64, 64)
    dtype: str = "float32"
    flush_denormal: bool = True
    shuffle_labels: bool = False  # a random-label control: train on permuted training labels

    @property
    def sam(self) -> bool:
        return self.rho > 0

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

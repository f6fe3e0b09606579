"""The config's `datasets` entries, parsed once (the schema's defaults filled in) into a `Dataset`: what the schema
cannot check of an entry, and an experiment's entry as preprocessing reads it (genboost.data reads the same).

An entry names the label column (with `order`, its ordinal classes, mapped to 0..K-1; without, a numeric
label), the categorical columns with every category, the columns to drop, and optionally `columns`, the
expected header in feature order; every other column is numeric. Values are compared as text: the CSV holds
text, so the number 1 and the string "1" are one category.
"""

from __future__ import annotations

from dataclasses import dataclass

from genboost.config.settings import defaults, experiment_defaults
from genboost.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    name: str
    sha256: str | None  # None: not checked (a CSV given directly to preprocessing, not through the config)
    sep: str
    quote: str
    columns: tuple[str, ...] | None  # the expected header, in feature order; None: the file's header
    label: str
    order: tuple[str, ...] | None  # the ordinal classes, lowest first; None: a numeric label
    categories: dict[str, tuple[str, ...]]
    drop: tuple[str, ...]

    @classmethod
    def from_config(cls, name: str, entry: dict) -> Dataset:
        """From a `datasets.<name>` entry, or the `settings()` of one; a key it leaves out (or sets to null) gets
        the schema's default. Keys that say where the file comes from (url, member, local_copy) are not read."""
        given = {key: value for key, value in entry.items() if value is not None}
        entry = {**defaults("$defs", "dataset"), **given}
        columns, order = entry.get("columns"), entry["label"].get("order")
        return cls(
            name=name,
            sha256=entry.get("sha256"),
            sep=entry["sep"],
            quote=entry["quote"],
            columns=tuple(columns) if columns is not None else None,
            label=entry["label"]["column"],
            order=tuple(str(v) for v in order) if order else None,
            categories={c: tuple(str(v) for v in vs) for c, vs in entry["categorical"].items()},
            drop=tuple(entry["drop"]),
        )

    def settings(self) -> dict:
        """The entry as preprocessing reads it: canonical (defaults filled in, values as text), so that equal
        entries give one data folder, and without where the file comes from, which cannot change what it
        holds (its sha256 says that)."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "sep": self.sep,
            "quote": self.quote,
            "columns": list(self.columns) if self.columns is not None else None,
            "label": {"column": self.label, "order": list(self.order) if self.order is not None else None},
            "categorical": {c: list(vs) for c, vs in self.categories.items()},
            "drop": list(self.drop),
        }

    def key(self, *parts: str) -> str:
        """The config key of a part of this entry, for error messages."""
        return ".".join(("datasets", self.name, *parts))

    def allowed(self, column: str) -> tuple[str, ...] | None:
        """The values a column may hold (its categories or the label's classes); None for a numeric column."""
        if column == self.label:
            return self.order
        return self.categories.get(column)

    def allowed_key(self, column: str) -> str:
        return self.key("label", "order") if column == self.label else self.key("categorical", column)

    def features(self, header: list[str]) -> list[str]:
        """The feature columns in feature order: the label and dropped columns left out."""
        return [c for c in (self.columns or header) if c != self.label and c not in self.drop]

    def named(self) -> list[str]:
        """The columns the entry names, which the file must have."""
        return [self.label, *self.categories, *self.drop]

    def check(self) -> None:
        """What the schema cannot say about the entry: how its columns' roles fit together."""
        key = f"config key {self.key()}"
        if self.label in self.categories or self.label in self.drop:
            raise ConfigError(f"{key}: the label column {self.label!r} is also listed in categorical or drop")
        both = sorted(set(self.categories) & set(self.drop))
        if both:
            raise ConfigError(f"{key}: {both} listed in both categorical and drop")
        absent = [c for c in self.named() if self.columns is not None and c not in self.columns]
        if absent:
            raise ConfigError(f"{key}.columns: {absent} named in the entry but not in columns {list(self.columns)}")
        lists = {"label.order": self.order or (), **{f"categorical.{c}": v for c, v in self.categories.items()}}
        for where, values in lists.items():
            if len(set(values)) < len(values):
                raise ConfigError(f"{key}.{where}: {list(values)} lists a value twice (as text)")


def parsed(datasets: dict) -> dict[str, Dataset]:
    """The config's `datasets` entries, each parsed and checked."""
    found = {name: Dataset.from_config(name, entry) for name, entry in datasets.items()}
    for dataset in found.values():
        dataset.check()
    return found


def source(entry: dict) -> str:
    """The file a `datasets` entry gives: its local_copy, else its url (with member, the member in it)."""
    if entry.get("local_copy"):
        return str(entry["local_copy"])
    return f"{entry['member']} in {entry['url']}" if entry.get("member") else entry["url"]


def dataset_settings(experiment: str, spec: dict, datasets: dict[str, Dataset]) -> dict:
    """The `settings()` of the experiment's dataset (its `dataset`, else the schema's default)."""
    name = spec.get("dataset", experiment_defaults()["dataset"])
    if name not in datasets:
        raise ConfigError(
            f"config key experiments.{experiment}.dataset: no dataset {name!r} in config key datasets "
            f"(it has {sorted(datasets)})"
        )
    return datasets[name].settings()

"""The config's `datasets` entries: what the schema cannot check, and an entry as preprocessing reads it."""

from __future__ import annotations

from genboost.errors import ConfigError

DEFAULT_DATASET = "obesity"  # an experiment's dataset when it names none (the schema's default too)


def check_dataset(name: str, entry: dict) -> None:
    """What the schema cannot say about a `datasets` entry: how its columns' roles fit together."""
    key = f"config key datasets.{name}"
    label, categorical, drop = entry["label"]["column"], entry.get("categorical") or {}, entry.get("drop") or []
    if label in categorical or label in drop:
        raise ConfigError(f"{key}: the label column {label!r} is also listed in categorical or drop")
    both = sorted(set(categorical) & set(drop))
    if both:
        raise ConfigError(f"{key}: {both} listed in both categorical and drop")
    columns = entry.get("columns")
    absent = [c for c in (label, *categorical, *drop) if columns is not None and c not in columns]
    if absent:
        raise ConfigError(f"{key}.columns: {absent} named in the entry but not in columns {columns}")
    lists = {
        "label.order": entry["label"].get("order") or [],
        **{f"categorical.{c}": v for c, v in categorical.items()},
    }
    for where, values in lists.items():
        texts = [str(v) for v in values]  # the CSV's values are text: 1 and "1" are one category
        if len(set(texts)) < len(texts):
            raise ConfigError(f"{key}.{where}: {values} lists a value twice")


def dataset_settings(experiment: str, spec: dict, datasets: dict) -> dict:
    """The experiment's dataset entry as preprocessing reads it: its name, not where the file comes from (url,
    member, local_copy), which cannot change what it holds (its sha256 says that)."""
    name = spec.get("dataset", DEFAULT_DATASET)
    if name not in datasets:
        raise ConfigError(
            f"config key experiments.{experiment}.dataset: no dataset {name!r} in config key datasets "
            f"(it has {sorted(datasets)})"
        )
    entry = datasets[name]
    order = entry["label"].get("order")
    return {  # canonical, defaults filled in and values as text, so that equal entries give one data folder
        "name": name,
        "sha256": entry["sha256"],
        "sep": entry.get("sep", ","),
        "quote": entry.get("quote", '"'),
        "columns": entry.get("columns"),
        "label": {"column": entry["label"]["column"], "order": [str(v) for v in order] if order else None},
        "categorical": {c: [str(v) for v in vs] for c, vs in (entry.get("categorical") or {}).items()},
        "drop": list(entry.get("drop") or []),
    }

"""Numbers and labels as the tables, reports and figures show them to people.

Canonical text (paths, wildcards, names of tables: `genboost.config.sweep.fmt_number` / `fmt_value`) is not
display text: it must read back exactly, and it stays with the config.
"""

from __future__ import annotations

import math

from genboost.config.sweep import fmt_number, fmt_value

MISSING = "–"  # a number that is not there (NaN): undefined, or not computed


def number(x: float | None, spec: str = ".4f", missing: str = MISSING) -> str:
    """`x` formatted by `spec`, or `missing` for None and NaN."""
    return missing if x is None or math.isnan(x) else format(x, spec)


def p_value(p: float) -> str:
    """A p-value to four decimals; below 0.0001 as "<0.0001"."""
    return MISSING if math.isnan(p) else "<0.0001" if p < 1e-4 else f"{p:.4f}"


def sam_label(rho: float) -> str:
    return f"SAM rho={fmt_number(rho)}" if rho > 0 else "no SAM"


def panel_title(optimizer: str, rho: float, levels: dict | None = None) -> str:
    """A figure panel's (or legend entry's) name: optimizer, SAM radius and the swept settings' values."""
    swept = "".join(f", {k}={fmt_value(k, v)}" for k, v in (levels or {}).items())
    return f"{optimizer.upper()}, " + ("no SAM" if rho == 0 else f"SAM ρ={fmt_number(rho)}") + swept

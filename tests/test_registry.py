"""The measure registry alone decides what is measured: the config's `analysis` keys, when a setting is off, the
columns a measure job writes, and the order, labels and names of every measure column."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genboost.config import settings
from genboost.measures import registry

PACBAYES = {"samples": 4, "iters": 2, "max_increase": 0.1}
PACBAYES_COLUMNS = ["pacbayes_flatness", "pacbayes_mag_flatness", "weight_norm", "dist_from_init"]


@pytest.fixture(scope="module")
def schema():
    return settings.load_schema()


def test_the_schemas_analysis_keys_are_the_registrys_settings(schema):
    assert list(schema["properties"]["analysis"]["properties"]) == list(registry.SETTINGS)


def test_the_schemas_defaults_measure_everything_the_job_computes(schema):
    defaults = settings.defaults("properties", "analysis")
    radii = [registry.radius_column(r) for r in sorted(defaults["sharpness_radii"])]
    assert registry.job_columns(defaults) == [*radii, "hessian_top_eig", *PACBAYES_COLUMNS]
    assert registry.measured(defaults)


@pytest.mark.parametrize(
    ("analysis", "columns"),
    [
        ({}, []),
        ({"sharpness_radii": [], "hessian_iters": None, "pacbayes": None}, []),
        ({"sharpness_radii": [0.1, 0.05]}, ["sharpness_r0.05", "sharpness_r0.1"]),  # radii ascending
        ({"sharpness_radii": [], "hessian_iters": 5}, ["hessian_top_eig"]),
        ({"pacbayes": PACBAYES, "hessian_iters": None}, PACBAYES_COLUMNS),
        ({"pacbayes": PACBAYES, "sharpness_radii": [0.05]}, ["sharpness_r0.05", *PACBAYES_COLUMNS]),
    ],
)
def test_a_setting_is_off_when_absent_null_or_empty(analysis, columns):
    assert registry.job_columns(analysis) == columns
    assert registry.measured(analysis) == bool(columns)


def test_a_measure_is_either_computed_on_a_setting_or_recorded_per_layer_in_training():
    assert all((m.setting is None) == m.per_layer for m in registry.MEASURES)
    everything = registry.job_columns({"sharpness_radii": [0.05], "hessian_iters": 5, "pacbayes": PACBAYES})
    assert not any(registry.measure_of(c).per_layer for c in everything)
    assert registry.measure_of("eff_lr_l2").per_layer and registry.measure_of("weight_norm_l1").per_layer


def test_a_setting_the_registry_does_not_know_is_an_error():
    with pytest.raises(KeyError, match="'hessian' is not a setting of genboost/measures/registry.py"):
        registry.setting({"hessian": 5}, "hessian")


def test_the_registry_orders_labels_and_refuses_unknown_measures():
    assert registry.ordered(["weight_norm", "sharpness_r0.1", "gap", "sharpness_r0.05"]) == [
        "sharpness_r0.05",
        "sharpness_r0.1",
        "weight_norm",
    ]
    assert registry.label("sharpness_r0.05") == "SAM-ascent sharpness, r=0.05"
    assert registry.label("eff_lr_l2").endswith(", layer 2")
    assert registry.measure_of("hessian_top_eig").higher == "sharper"
    with pytest.raises(ValueError, match=r"\['fisher_rao'\] are not in genboost/measures/registry.py"):
        registry.check_known(["weight_norm", "fisher_rao"])


def test_the_registry_imports_no_torch(repo_root):
    """The Snakefile and the analysis import the registry: it stays plain values."""
    code = "import sys, genboost.measures.registry; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""The grid: canonical numbers, config errors, cells, packing and paths."""

import copy

import pytest
from workflow_helpers import checked_config, repo_config

from genboost import wiring
from genboost.config import packing, settings
from genboost.config.cell import AXES, Cell
from genboost.config.study import GRID_KEYS, JOB_KEYS, TRAIN_KEYS, Study, fmt_number
from genboost.errors import ConfigError


@pytest.fixture
def config():
    return checked_config(repo_config())


def study_of(config) -> Study:
    return Study.from_config(checked_config(copy.deepcopy(config)))


def test_numbers_round_trip_to_one_path():
    assert fmt_number("3e-5") == fmt_number(0.00003) == fmt_number(3.0e-05) == "3e-05"
    assert fmt_number(0) == fmt_number("0.0") == "0"
    assert fmt_number("1e-4") == "0.0001"
    for text in ("3e-05", "0.0001", "0.02", "0", "1e-05", "1e+16"):
        assert fmt_number(float(text)) == text


def test_default_study_has_576_plus_72_models(config):
    study = Study.from_config(config)
    main, second = study.experiments
    assert len(main.cells()) == 576 and len(second.cells()) == 72
    assert len({wiring.metrics_path(e, study.results, c) for e in study.experiments for c in e.cells()}) == 648
    epochs = {(c.rho > 0, c.epochs) for c in main.cells()}
    assert epochs == {(False, 200), (True, 100)}
    assert {c.epochs for c in second.cells()} == {200} and {c.rho for c in second.cells()} == {0.02}


def test_yaml_string_numbers_are_parsed(config):
    study = Study.from_config(config)
    assert study.experiments[0].grid["lr"][0] == 3e-5  # YAML reads "3e-5" as a string


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lrs", [1e-3, "fast"], "'fast' is not of type 'number'"),
        ("lrs", [0], "0 is less than or equal to the minimum of 0"),
        ("wds", [-1e-3], "-0.001 is less than the minimum of 0"),
        ("lrs", ["3e-5", 0.00003], "has non-unique elements"),
        ("optimizers", ["rmsprop"], "'rmsprop' is not one of ['sgd', 'adam']"),
        ("rhos", [], "[] should be non-empty"),
        ("bogus", 1, "'bogus' was unexpected"),
        ("momentum", -1, "-1 is less than the minimum of 0"),
        ("adam_betas", [1.0, 0.999], "1.0 is greater than or equal to the maximum of 1"),
        ("adam_eps", 0, "0 is less than or equal to the minimum of 0"),
        ("lrs", [".inf"], "inf is greater than the maximum"),
    ],
)
def test_invalid_values_fail_validation_naming_the_key(config, key, value, message):
    bad = copy.deepcopy(config)
    bad["experiments"]["main"][key] = value
    with pytest.raises(ConfigError) as err:
        checked_config(bad)
    text = str(err.value)
    assert message in text and text.startswith("config key experiments.main")
    assert len(text.splitlines()) == 1, "one problem, one line (not the schema)"


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("analysis", "sharpness_radii", [-0.01], "-0.01 is less than or equal to the minimum of 0"),
        ("analysis", "hessian_iters", 0, "0 is less than the minimum of 1"),
        ("preprocess", "scale", "minmax", "'minmax' is not one of ['none', 'standard']"),
        ("train", "momentum", "fast", "'fast' is not of type 'number'"),
    ],
)
def test_invalid_section_values_fail_validation(config, section, key, value, message):
    bad = copy.deepcopy(config)
    bad[section][key] = value
    with pytest.raises(ConfigError) as err:
        checked_config(bad)
    text = str(err.value)
    assert message in text and text.startswith(f"config key {section}.{key}")
    assert len(text.splitlines()) == 1


def test_nan_is_refused_naming_the_key(config):
    bad = copy.deepcopy(config)
    bad["train"]["adam_eps"] = ".nan"
    with pytest.raises(ConfigError, match="config key train.adam_eps: nan is not a finite number"):
        study_of(bad)


def test_train_keys_are_the_cell_settings_and_the_schema_lists_them():
    schema = settings.load_schema()
    assert set(TRAIN_KEYS) == set(schema["$defs"]["train"]["properties"])
    assert set(TRAIN_KEYS) - {"sam_epochs", *JOB_KEYS} == set(Cell.__dataclass_fields__) - {
        *AXES,
        "hidden",
        "norm",  # model.hidden and model.norm
    }


def test_the_schema_requires_a_list_per_axis_under_its_grid_key():
    schema = settings.load_schema()
    experiment = schema["properties"]["experiments"]["additionalProperties"]
    assert experiment["required"] == [GRID_KEYS[axis] for axis in AXES]
    assert all(GRID_KEYS[axis] in experiment["properties"] for axis in AXES)


def test_changing_sgd_momentum_leaves_adam_cells_as_they_were(config):
    before = study_of(config).experiment("main").cells()
    changed = copy.deepcopy(config)
    changed["train"]["momentum"] = 0.9
    after = study_of(changed).experiment("main").cells()
    same = [a == b for a, b in zip(before, after, strict=True)]
    assert [c.optimizer == "adam" for c in before] == same
    assert {c.momentum for c in after if c.optimizer == "sgd"} == {0.9}


def test_zero_written_as_int_or_float_is_one_cell(config):
    as_float = copy.deepcopy(config)
    as_float["train"]["momentum"] = 0.0
    assert study_of(config).experiment("main").cells() == study_of(as_float).experiment("main").cells()


@pytest.mark.parametrize("results", ["./out", "out/", "out//", "./out/."])
def test_results_path_is_normalized(config, results):
    cfg = copy.deepcopy(config)
    cfg["results"] = results
    study = study_of(cfg)
    assert study.results == "out"
    main = study.experiment("main")
    assert wiring.metrics_path(main, study.results, main.cells()[0]).startswith("out/main/runs/")


def test_experiments_with_equal_preprocessing_share_one_split(config):
    cfg = copy.deepcopy(config)
    for name in ("modern", "standardized", "sgd_momentum"):
        cfg["experiments"][name]["enabled"] = True
    study = study_of(cfg)
    ids = {e.name: e.data_id for e in study.experiments}
    assert ids["main"] == ids["second_chance"] == ids["sgd_momentum"]
    assert ids["modern"] == ids["standardized"] != ids["main"]
    obesity = study.experiment("main").preprocess["dataset"]
    assert obesity["name"] == "obesity" and obesity["drop"] == ["Weight"]
    assert study.preprocessings() == {
        ids["main"]: {**config["preprocess"], "scale": "none", "dataset": obesity},
        ids["modern"]: {**config["preprocess"], "scale": "standard", "dataset": obesity},
    }
    assert wiring.data_paths(study.experiment("modern"), "r")["train"] == f"r/data/{ids['modern']}/train.csv"


def test_setup_partners(config):
    cfg = copy.deepcopy(config)
    cfg["experiments"]["modern"]["enabled"] = True
    study = study_of(cfg)
    main, second, modern = (study.experiment(n) for n in ("main", "second_chance", "modern"))
    assert second.continues == "main" and main.continues == ""
    assert study.partner(main) is second and study.partner(second) is main
    assert study.partner(modern) is None and modern.reference_experiment == "main"
    compared = study.compared({"main", "second_chance"})
    assert compared == {"main": second, "second_chance": main, "modern": None}
    assert study.setups(compared) == {"main": "second_chance", "modern": None}
    assert study.compared({"main"}) == {"main": second, "modern": None}


def test_partners_follow_the_continues_key_not_the_names(config):
    """Renamed experiments pair as the config says: the long run's partner is the run it continues."""
    cfg = copy.deepcopy(config)
    cfg["experiments"] = {"short": cfg["experiments"]["main"], "long": cfg["experiments"]["second_chance"]}
    cfg["experiments"]["long"]["continues"] = "short"
    cfg["baseline"] = "short"
    study = study_of(cfg)
    short, long = study.experiment("short"), study.experiment("long")
    assert study.compared({"short", "long"}) == {"short": long, "long": short}
    assert study.setups(study.compared({"short", "long"})) == {"short": "long"}
    cfg["experiments"]["short"]["enabled"] = False  # the run it continues is off: refused, naming both
    with pytest.raises(ConfigError, match=r"config key experiments\.long\.continues: 'long' continues 'short', "
                       r"which is switched off \(experiments\.short\.enabled: false\)"):  # fmt: skip
        study_of(cfg)


def test_second_chance_without_main_is_refused_not_planned_alone(config):
    """config.yaml with main switched off: second_chance continues it, so the config is refused naming both."""
    cfg = copy.deepcopy(config)
    cfg["experiments"]["main"]["enabled"] = False
    with pytest.raises(ConfigError, match="experiments.second_chance.continues: 'second_chance' continues 'main'"):
        study_of(cfg)
    cfg["experiments"]["second_chance"]["enabled"] = False
    cfg["experiments"]["fair"]["enabled"] = True
    assert [e.name for e in study_of(cfg).experiments] == ["fair"], "both off: only the one switched on runs"


def test_the_summarys_baseline_is_named_not_the_first_experiment(config):
    cfg = copy.deepcopy(config)
    cfg["experiments"] = {"random_labels": cfg["experiments"]["random_labels"], **cfg["experiments"]}
    cfg["experiments"]["random_labels"]["enabled"] = True  # first, as --config naming it puts it
    assert study_of(cfg).baseline == "main" and [e.name for e in study_of(cfg).experiments][0] == "main"
    cfg["baseline"] = "random_labels"
    assert study_of(cfg).baseline == "random_labels"
    off = r"'modern' is switched off \(experiments\.modern\.enabled: false\)"
    for name, says in ((None, "not given"), ("nowhere", "'nowhere' is not an enabled experiment"), ("modern", off)):
        cfg["baseline"] = name
        with pytest.raises(ConfigError, match=f"config key baseline: {says}; name the experiment the summary"):
            study_of(cfg)
    cfg["experiments"] = {"fair": {**cfg["experiments"]["fair"], "enabled": True}}  # nothing to compare with
    assert study_of(cfg).baseline == "fair"


@pytest.mark.parametrize(
    ("continues", "says"),
    [
        ("nowhere", r"experiments.second_chance.continues: 'nowhere' is not another experiment"),
        ("second_chance", r"'second_chance' is not another experiment"),
        ("modern", r"'modern' has another setup"),
        ("random_labels", r"'random_labels' has another setup"),
    ],
)
def test_continues_must_name_another_experiment_of_the_same_setup(config, continues, says):
    cfg = copy.deepcopy(config)
    for name in ("modern", "random_labels"):
        cfg["experiments"][name]["enabled"] = True
    cfg["experiments"]["second_chance"]["continues"] = continues
    with pytest.raises(ConfigError, match=says):
        study_of(cfg)


def test_continues_refuses_a_chain_and_a_bad_name(config):
    cfg = copy.deepcopy(config)
    cfg["experiments"]["third"] = {**cfg["experiments"]["second_chance"], "continues": "second_chance"}
    with pytest.raises(ConfigError, match="'second_chance' itself continues 'main'; name the first run"):
        study_of(cfg)
    cfg["experiments"]["third"]["continues"] = "a b"
    with pytest.raises(ConfigError, match="config key experiments.third.continues: 'a b' does not match"):
        study_of(cfg)


def test_reference_experiments_are_read_from_the_table(repo_root, tmp_path):
    assert wiring.reference_experiments(str(repo_root / "reference/talk-tables.csv")) == {"main", "second_chance"}
    assert wiring.reference_experiments(None) == set()
    with pytest.raises(ConfigError, match="config key reference: cannot read"):
        wiring.reference_experiments(str(tmp_path / "missing.csv"))


def test_packing_covers_every_cell_once(config):
    cfg = copy.deepcopy(config)
    for pack in ([], ["seed"], ["lr", "wd", "seed"], list(AXES)):
        cfg["train"]["pack"] = pack
        exp = Study.from_config(cfg).experiments[0]
        free = [a for a in AXES if a not in pack]
        # a job file's name keeps exactly the free axes and the part as wildcards
        pattern = wiring.job_file(exp, "r")
        assert sorted(p.split("=")[0] for p in pattern.split("/") if "{" in p) == sorted([*free, "part"])
        for parts in (1, 2, 3):
            if parts > exp.pack_size():
                continue
            names = packing.jobs(exp, parts)
            assert len(names) == packing.pack_count(exp) * parts
            paths = [p for n in names for p in wiring.job_metrics(exp, "r", n)]
            assert sorted(paths) == sorted(wiring.metrics_path(exp, "r", c) for c in exp.cells())
            for n in names:  # each cell's job is the job that trains it
                assert all(packing.job_of(exp, c, parts) == n for c in packing.job_cells(exp, n))


def test_job_params_are_in_the_order_of_the_metrics(config):
    cfg = copy.deepcopy(config)
    cfg["train"]["pack"] = ["seed", "lr"]
    exp = Study.from_config(cfg).experiments[0]
    wildcards = {"optimizer": "sgd", "wd": "0.001", "rho": "0.02", "part": "1of1"}
    cells = [Cell.from_dict(c) for c in wiring.job_params(exp, wildcards)]
    outputs = wiring.job_metrics(exp, "r", wildcards)
    assert [wiring.metrics_path(exp, "r", c) for c in cells] == outputs and len(set(outputs)) == 6 * 3


def test_job_params_are_plain_values(config):
    exp = Study.from_config(config).experiments[0]
    params = wiring.job_params(exp, {"optimizer": "adam", "rho": "0.05", "part": "1of1"})
    assert len(params) == 6 * 4 * 3
    assert all(type(v) in (str, int, float, bool, list) for p in params for v in p.values())
    assert {p["epochs"] for p in params} == {100}
    assert params == [c.to_dict() for c in packing.job_cells(exp, {"optimizer": "adam", "rho": "0.05", "part": "1of1"})]


def test_unknown_wildcard_value_is_an_error(config):
    exp = Study.from_config(config).experiments[0]
    with pytest.raises(ConfigError, match="rho='0.5' is not in the grid"):
        exp.pack_cells({"optimizer": "adam", "rho": "0.5"})


def test_gpu_resources_only_on_cuda(config):
    cfg = copy.deepcopy(config)
    assert "gpu" not in wiring.job_resources(Study.from_config(cfg).experiments[0])
    cfg["train"]["device"] = "cuda"
    assert wiring.job_resources(Study.from_config(cfg).experiments[0])["gpu"] == 1


def test_runtime_and_memory_grow_with_each_attempt(config):
    resources = wiring.job_resources(Study.from_config(config).experiments[0])
    for name, least in (("runtime", 10), ("mem_mb", 1000)):
        first, second = resources[name]({}, 1), resources[name]({}, 2)
        assert first >= least and second == 2 * first


def test_extra_experiments_are_off_until_enabled(config):
    names = [e.name for e in Study.from_config(config).experiments]
    assert names == ["main", "second_chance"]
    cfg = copy.deepcopy(config)
    cfg["experiments"]["random_labels"]["enabled"] = True
    cfg["experiments"]["adam_decoupled"]["enabled"] = True
    study = study_of(cfg)
    noise, adamw = study.experiment("random_labels"), study.experiment("adam_decoupled")
    assert all(c.shuffle_labels for c in noise.cells()) and not any(c.shuffle_labels for c in adamw.cells())
    assert {c.wd_mode for c in adamw.cells()} == {"decoupled"} and len(adamw.cells()) == 72


def test_the_talks_conclusions_are_checked_on_every_experiment_that_can_answer_them(config):
    """Study.talk_experiments: every experiment but a second chance, a sweep or shuffled labels, whatever its grid
    or data; the published ones are the setups, the others are judged on their own cells."""
    cfg = copy.deepcopy(config)
    others = ("anes96", "fair", "modern", "random_labels", "implicit_bias", "adam_decoupled")
    for name in others:
        cfg["experiments"][name]["enabled"] = True
    cfg["experiments"]["fair_long"] = {**cfg["experiments"]["second_chance"], "continues": "fair", "dataset": "fair"}
    cfg["experiments"]["fair_long"]["reference_experiment"] = "none"
    cfg["experiments"]["fair"]["lrs"] = [3e-3]  # not the talk's grid: checked all the same
    study = study_of(cfg)
    compared = study.compared({"main", "second_chance"})
    checked = study.talk_experiments(compared)
    assert sorted(checked) == ["adam_decoupled", "anes96", "fair", "main", "modern"]
    assert checked["main"] == {"dataset": "obesity", "second_chance": "second_chance", "published": True}
    assert study.setups(compared) == {"main": "second_chance", "modern": None}
    assert study.judged_on_own_cells(compared) == {
        "adam_decoupled": {"dataset": "obesity", "second_chance": None},
        "anes96": {"dataset": "anes96", "second_chance": None},
        "fair": {"dataset": "fair", "second_chance": "fair_long"},
    }
    assert study.setups({}) == {} and sorted(study.judged_on_own_cells({})) == sorted(checked)


def test_a_comparison_with_the_talks_tables_needs_the_talks_data(config):
    cfg = copy.deepcopy(config)
    cfg["experiments"]["fair"] = {**cfg["experiments"]["fair"], "enabled": True, "reference_experiment": "main"}
    study = study_of(cfg)
    with pytest.raises(ConfigError) as e:
        study.compared({"main", "second_chance"})
    for said in ("experiments.fair.reference_experiment", "'main'", "obesity data", "fair data", "none"):
        assert said in str(e.value)
    assert "fair" not in study.compared({"second_chance"}), "a table without its experiment: not compared"


@pytest.mark.parametrize("key, short", [("epochs", 20), ("sam_epochs", 10)])
def test_a_run_shorter_than_t_max_warns_naming_both_keys(config, caplog, key, short):
    cfg = copy.deepcopy(config)
    study_of(cfg)
    assert not caplog.records, "the default study anneals within its runs"
    cfg["train"][key] = short
    study_of(cfg)
    (said,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"train.t_max 100 exceeds train.{key} {short}" in said and "experiments.main" in said
    caplog.clear()
    cfg["train"]["t_max"] = short
    study_of(cfg)
    assert not caplog.records

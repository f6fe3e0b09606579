"""One train job: store reuse, interrupted jobs, damaged store entries, device errors."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from workflow_helpers import append_code

from genboost import files, fingerprint, wiring
from genboost.config.study import Experiment, Study
from genboost.data import tensors
from genboost.errors import DataError
from genboost.train import blocks, engine, jobs
from genboost.train.store import CellStore


@pytest.fixture
def experiment(repo_root):
    config = yaml.safe_load((repo_root / "tests/configs/tiny.yaml").read_text())
    config["model"]["hidden"] = [4]
    config["train"].update(epochs=1, sam_epochs=1)
    return Study.from_config(config).experiment("main")


def run(experiment, cells, results, csvs, **kw):
    outputs = [wiring.metrics_path(experiment, str(results), c) for c in cells]
    return jobs.run_train_job(jobs.TrainJob(experiment, cells, outputs, str(results), *csvs, **kw)), outputs


def test_second_run_reuses_every_cell_bit_for_bit(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:6]
    (trained, reused), outputs = run(experiment, cells, tmp_path, split_csvs)
    assert (trained, reused) == (6, 0)
    first = [json.loads(open(o).read()) for o in outputs]
    (trained, reused), _ = run(experiment, cells, tmp_path, split_csvs)
    assert (trained, reused) == (0, 6)
    assert [json.loads(open(o).read()) for o in outputs] == first
    assert all(r["config"] == c.to_dict() for r, c in zip(first, cells, strict=True))


def test_interrupted_job_keeps_finished_blocks_and_writes_no_metrics(experiment, tmp_path, split_csvs, monkeypatch):
    cells = experiment.cells()[:8]
    real = engine._fit_block
    calls = []

    def interrupted(block, *args, **kw):
        calls.append(len(block))
        if len(calls) > 1:
            raise KeyboardInterrupt  # as if the job were killed during its second block
        return real(block, *args, **kw)

    monkeypatch.setattr(blocks, "BLOCK_SIZE", 4)
    monkeypatch.setattr(engine, "_fit_block", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(experiment, cells, tmp_path, split_csvs)
    assert not list(tmp_path.rglob("metrics.json")) and not list(tmp_path.rglob("*.tmp"))
    monkeypatch.setattr(engine, "_fit_block", real)
    (trained, reused), _ = run(experiment, cells, tmp_path, split_csvs)
    assert (trained, reused) == (4, 4)


def test_damaged_store_entry_is_retrained(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:2]
    _, outputs = run(experiment, cells, tmp_path, split_csvs)
    good = json.loads(open(outputs[0]).read())
    entry = next((tmp_path / "store").rglob(f"{good['store_key']}.json"))
    entry.write_text(entry.read_text()[:50])  # a truncated entry
    (trained, reused), _ = run(experiment, cells, tmp_path, split_csvs)
    assert (trained, reused) == (1, 1)
    assert json.loads(open(outputs[0]).read())["test_mse"] == good["test_mse"]


def test_changed_cell_config_is_not_reused(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:2]
    run(experiment, cells, tmp_path, split_csvs)
    other = Experiment(experiment.name, experiment.grid, {**experiment.train, "momentum": 0.5}, experiment.hidden)
    (trained, reused), _ = run(other, other.cells()[:2], tmp_path, split_csvs)
    assert (trained, reused) == (2, 0)


def test_outputs_must_match_the_cells(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:2]
    with pytest.raises(RuntimeError, match="train job has 1 outputs for 2 cells"):
        jobs.run_train_job(jobs.TrainJob(experiment, cells, [str(tmp_path / "x.json")], str(tmp_path), *split_csvs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the message on a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="train.device is 'cuda' but CUDA is not available"):
        jobs.resolve_device("cuda")
    assert jobs.resolve_device("auto").type == "cpu"


def test_diverged_cell_is_recorded_not_raised(experiment, tmp_path, split_csvs):
    wild = Experiment(experiment.name, copy.deepcopy(experiment.grid), experiment.train, experiment.hidden)
    wild.grid["lr"] = (1e6,)
    cell = wild.cell("sgd", 1e6, 0.0, 0.0, 0)
    (trained, _), outputs = run(wild, [cell], tmp_path, split_csvs)
    record = json.loads(open(outputs[0]).read())
    assert record["diverged"] is True and record["diverged_step"] >= 1 and record["test_mse"] is None


def test_random_label_cells_train_on_permuted_training_labels(experiment, tmp_path, split_csvs):
    split = tensors.load_split(*split_csvs)
    shuffled = split.with_shuffled_labels()
    assert torch.equal(shuffled.y_train.sort().values, split.y_train.sort().values)
    assert not torch.equal(shuffled.y_train, split.y_train) and torch.equal(shuffled.y_test, split.y_test)
    noisy = Experiment("noise", experiment.grid, {**experiment.train, "shuffle_labels": True}, experiment.hidden)
    cell, real_cell = noisy.cells()[0], experiment.cells()[0]
    _, (out,) = run(noisy, [cell], tmp_path, split_csvs)
    _, (real_out,) = run(experiment, [real_cell], tmp_path, split_csvs)
    noisy_record, real_record = json.loads(open(out).read()), json.loads(open(real_out).read())
    assert noisy_record["config"]["shuffle_labels"] is True
    assert noisy_record["train_mse"] != real_record["train_mse"]


def test_same_cell_twice_gives_bit_identical_numbers(experiment, tmp_path, split_csvs):
    """Trained twice from scratch (two stores), a cell's numbers are identical; only timings may differ."""
    cells = [c for c in experiment.cells() if c.rho > 0][:2] + experiment.cells()[:2]
    _, first = run(experiment, cells, tmp_path / "a", split_csvs)
    _, second = run(experiment, cells, tmp_path / "b", split_csvs)
    for a, b in zip(first, second, strict=True):
        ra, rb = json.loads(open(a).read()), json.loads(open(b).read())
        for key in ("wall_s", "pack_wall_s"):
            ra.pop(key), rb.pop(key)
        assert ra == rb


def test_progress_eta_counts_only_the_epochs_a_block_trains(monkeypatch, caplog):
    """A block that goes on from epoch 100 of 200: half done at epoch 150, so the ETA equals the time so far."""
    clock = iter([0.0, 1.0, 50.0])
    monkeypatch.setattr(jobs.time, "perf_counter", lambda: next(clock))
    progress = jobs.ProgressLog(72, every=0.0)
    with caplog.at_level("INFO", logger="genboost"):
        progress.update(72, 101, 200)
        progress.update(72, 150, 200)
    assert "epoch 150/200 of the current block, elapsed 50s, ETA 50s" in caplog.text


def test_store_entries_of_the_wrong_shape_or_of_another_cell_are_retrained(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:3]
    _, outputs = run(experiment, cells, tmp_path, split_csvs)
    good = [json.loads(open(o).read()) for o in outputs]
    entries = [next((tmp_path / "store").rglob(f"{r['store_key']}.json")) for r in good]
    entries[0].write_text("[]")
    entries[1].write_text(json.dumps({"store_key": good[1]["store_key"], "config": good[1]["config"]}))
    entries[2].write_text(json.dumps({**good[0], "store_key": good[2]["store_key"]}))  # cell 0's numbers
    (trained, reused), _ = run(experiment, cells, tmp_path, split_csvs)
    assert (trained, reused) == (3, 0)
    assert [json.loads(open(o).read())["test_mse"] for o in outputs] == [r["test_mse"] for r in good]


def test_a_float64_job_trains_on_the_csvs_float64_values(experiment, tmp_path, split_csvs, monkeypatch):
    wide = Experiment(experiment.name, experiment.grid, {**experiment.train, "dtype": "float64"}, experiment.hidden)
    seen, real = [], engine.train_blocks
    monkeypatch.setattr(
        engine, "train_blocks", lambda cells, split, **kw: seen.append(split) or real(cells, split, **kw)
    )
    _, (output,) = run(wide, wide.cells()[:1], tmp_path, split_csvs)
    assert json.loads(open(output).read())["config"]["dtype"] == "float64"
    (split,) = seen
    for pair, path in (
        ((split.x_train, split.y_train), split_csvs[0]),
        ((split.x_test, split.y_test), split_csvs[1]),
    ):
        values = torch.from_numpy(np.loadtxt(path, delimiter=",", skiprows=1))  # exact: Python's float()
        assert all(t.dtype == torch.float64 for t in pair)
        assert torch.equal(pair[0], values[:, :-1]) and torch.equal(pair[1], values[:, -1])
    assert not torch.equal(split.x_train.float().double(), split.x_train)  # float32 would have rounded them


def test_a_job_mixing_dtypes_is_refused(experiment, tmp_path, split_csvs):
    cells = [experiment.cells()[0], replace(experiment.cells()[1], dtype="float64")]
    with pytest.raises(RuntimeError, match=r"mixes cells of dtype \['float32', 'float64'\]"):
        run(experiment, cells, tmp_path, split_csvs)


def test_a_failed_job_prints_its_error_on_one_line_on_stderr(tmp_path, capsys):
    """Snakemake's terminal shows a failed script's stderr, not its log file: the cause must be there."""
    with pytest.raises(DataError), files.logging_to([str(tmp_path / "job.log")]):
        raise DataError("train.csv has no 'label' column;\n  rerun preprocess")
    err = capsys.readouterr().err
    assert "genboost: DataError: train.csv has no 'label' column; rerun preprocess\n" in err


def test_every_trained_model_keeps_its_weights_and_a_result_without_them_is_retrained(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:2]
    _, outputs = run(experiment, cells, tmp_path, split_csvs)
    records = [json.loads(open(o).read()) for o in outputs]
    store = CellStore(tmp_path / "store")
    weights = [store.get_weights(r["store_key"], r["config"]["hidden"], r["config"]["dtype"]) for r in records]
    assert [[tuple(t.shape) for t in wb] for wb in weights[0]] == [[(30, 4), (4,)], [(4, 1), (1,)]]
    store.weights_path(records[0]["store_key"]).unlink()
    (trained, reused), _ = run(experiment, cells, tmp_path, split_csvs)
    assert (trained, reused) == (1, 1)
    again = store.get_weights(records[0]["store_key"], [4], "float32")
    assert all(torch.equal(a, b) for pa, pb in zip(again, weights[0], strict=True) for a, b in zip(pa, pb, strict=True))
    assert json.loads(open(outputs[0]).read()) == {**records[0], **timings(json.loads(open(outputs[0]).read()))}


def timings(record: dict) -> dict:
    return {k: record[k] for k in ("wall_s", "pack_wall_s", "pack_size")}


def test_a_result_is_keyed_by_the_code_that_computes_it_not_by_the_job_around_it(tmp_path):
    """The engine, what it imports and the data loading key a stored result; the job's bookkeeping does not."""
    package = shutil.copytree(
        fingerprint.PACKAGE_DIR, tmp_path / "genboost", ignore=shutil.ignore_patterns("__pycache__")
    )
    before = jobs.result_code(package)
    assert before == jobs.result_code()  # an unedited copy: the same code
    for bookkeeping in ("train/jobs.py", "train/store.py", "wiring.py", "config/study.py"):
        append_code(package / bookkeeping)
    assert jobs.result_code(package) == before
    for computing in ("train/engine.py", "train/model.py", "config/cell.py", "data/tensors.py"):
        original = append_code(package / computing)
        assert jobs.result_code(package) != before, computing
        (package / computing).write_bytes(original)


def test_the_store_key_holds_the_result_code_and_the_curve_interval(experiment, tmp_path, split_csvs):
    job = jobs.TrainJob(experiment, experiment.cells()[:1], [], str(tmp_path), *split_csvs)
    context = jobs.store_context(job, torch.device("cpu"))
    assert context["code"] == jobs.result_code() and context["curve_every"] == experiment.train["curve_every"] == 2
    assert "analysis" not in context


def test_the_job_file_holds_every_cells_record_in_order(experiment, tmp_path, split_csvs):
    cells = experiment.cells()[:3]
    job_file = tmp_path / "jobs" / "part=1of1.json"
    _, outputs = run(experiment, cells, tmp_path, split_csvs, job_file=str(job_file))
    written = json.loads(job_file.read_text())
    assert written["experiment"] == "main"
    assert written["cells"] == [json.loads(open(o).read()) for o in outputs]

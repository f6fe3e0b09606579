"""The README's measured figures are those of files the pipeline wrote, committed under docs/.

docs/default-study/ holds `summary.md` and `<experiment>/vs_talk.md` of the default study, docs/setups-study/
the same of the run with the three setups enabled, docs/datasets-study/ the summary of the run with anes96 and fair
(docs/README.md: how to refresh them). Every number the README
quotes in "Does it reproduce the talk?" and "What the default study found" must be one of the numbers at its
place in those files, rounded as the README writes it; the verdicts must be theirs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"
README = (REPO_ROOT / "README.md").read_text()

NUMBER = re.compile(r"[+\-−]?\d+\.\d+")
# Settings the prose names (SAM rho 0.02, SGD momentum 0.9, radius 0.1, p < 0.05; lr 3e-3 has no point): not
# measured, not checked. A signed number after a name is measured ("rho +0.46", the psi of the axis rho).
SETTING = re.compile(r"\b(?:rho|SAM|momentum|radius|p <)\s+\d[\d.e\-]*")


def numbers(text: str) -> list[str]:
    """The measured numbers of a README passage, as written."""
    return NUMBER.findall(SETTING.sub("", text.replace("**", "")))


def agrees(written: str, source: str) -> bool:
    """Whether a number of `source`, rounded to as many decimals as `written` has, is `written` (sign included)."""
    value = float(written.replace("−", "-"))
    half = 0.5 * 10 ** -len(written.split(".")[1]) + 1e-12
    return any(abs(float(x.replace("−", "-")) - value) <= half for x in NUMBER.findall(source))


def assert_figures_from(passage: str, source: str, where: str) -> None:
    missing = [n for n in numbers(passage) if not agrees(n, source)]
    assert not missing, f"README numbers {missing} in {passage!r} are not in {where}:\n{source}"


def read_doc(relative: str) -> str:
    path = DOCS / relative
    if not path.is_file():
        message = (
            f"{path} is missing: after a full run, refresh docs/ from results/ with the commands in docs/README.md"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path.read_text()


def section(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i : text.index(end, i + len(start))]


def cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def table_rows(text: str, first_cell: str) -> list[list[str]]:
    """The rows of Markdown tables whose first cell starts with `first_cell`."""
    return [cells(line) for line in text.splitlines() if line.startswith("|") and cells(line)[0].startswith(first_cell)]


def agreement_row(vs_talk: str) -> list[str]:
    """vs_talk.md's row `all` of "How well the numbers agree": compared, diverged, ours only, talk only,
    Spearman, Pearson, mean |ours − talk|."""
    (row,) = table_rows(section(vs_talk, "## How well the numbers agree", "\n## "), "all")
    return row[1:]


def claim_rows(vs_talk: str, claim: str) -> str:
    """vs_talk.md's table rows of one of the talk's conclusions (C1 has two)."""
    rows = [line for line in vs_talk.splitlines() if re.match(rf"\|\s*{claim}\s*\|", line)]
    assert rows, f"no rows for {claim} in vs_talk.md"
    return "\n".join(rows)


def experiment_of(first_cell: str) -> str:
    return re.match(r"`(\w+)`", first_cell).group(1)


def readme_table(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row starts with `| header |`."""
    lines = text[text.index(f"| {header} |") :].splitlines()
    body = [line for line in lines[2:]]
    return [cells(line) for line in body[: next((i for i, x in enumerate(body) if not x.startswith("|")), None)]]


TALK = section(README, "## Does it reproduce the talk?", "\n## ")
AGREEMENT = readme_table(TALK, "experiment")  # experiment, configurations, Spearman, Pearson, mean
CONCLUSIONS = readme_table(TALK, "the talk concludes")  # the talk concludes, our verdict, our numbers
SETUPS = readme_table(TALK, "setup")  # setup, C1, C2, C3, "Spearman, mean"
FOUND = section(README, "**What the default study found**", "\n\n")


def test_the_readme_sections_are_found():
    assert [experiment_of(r[0]) for r in AGREEMENT] == ["main", "second_chance"]
    assert [r[0][:2] for r in CONCLUSIONS] == ["C1", "C2", "C3", "C4"]
    assert [experiment_of(r[0]) for r in SETUPS] == ["main", "standardized", "sgd_momentum", "modern"]
    assert len(numbers(FOUND)) >= 10


@pytest.mark.parametrize("row", AGREEMENT, ids=lambda r: experiment_of(r[0]))
def test_agreement_with_the_talk(row):
    experiment = experiment_of(row[0])
    compared, diverged, _, _, *measured = agreement_row(read_doc(f"default-study/{experiment}/vs_talk.md"))
    m = re.fullmatch(r"(\d+)(?: \(\+(\d+) with a diverged seed\))?", row[1])
    assert m, row[1]
    assert (m.group(1), m.group(2) or "0") == (compared, diverged)
    for written, source in zip(row[2:], measured, strict=True):
        assert agrees(written, source), (experiment, written, source)


@pytest.mark.parametrize("row", CONCLUSIONS, ids=lambda r: r[0][:2])
def test_the_talks_conclusions_on_our_numbers(row):
    """Columns: the claim, its verdict on the fresh seeds (vs_talk.md's "Confirmed on N fresh seeds", first), the
    fresh numbers, and the verdict on the grid's seeds (the selection's section, second) with its numbers."""
    claim = row[0][:2]
    vs_talk = read_doc("default-study/main/vs_talk.md")
    confirmed, selection = re.findall(rf"- \*\*{claim}\*\* .*?: \*\*(.+?)\*\*", vs_talk)
    assert confirmed == row[1].replace("**", ""), (claim, row[1])
    assert row[3].startswith(f"{selection} ("), (claim, row[3])
    where = f"{claim}'s rows of docs/default-study/main/vs_talk.md"
    assert_figures_from(row[2] + " " + row[3], claim_rows(vs_talk, claim), where)


def conclusion_matrix(summary: str) -> dict[str, dict[str, str]]:
    """summary.md's matrix of the talk's conclusions confirmed on fresh seeds: claim (C1..) -> setup -> its entry."""
    table = section(summary, "### Confirmed on", "The winner's curse")
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = cells(lines[0])
    return {row[0][:2]: dict(zip(header[1:], row[1:], strict=True)) for row in map(cells, lines[2:])}


@pytest.mark.parametrize("row", SETUPS, ids=lambda r: experiment_of(r[0]))
def test_each_setup_against_the_talk(row):
    setup = experiment_of(row[0])
    matrix = conclusion_matrix(read_doc("setups-study/summary.md"))
    vs_talk = read_doc(f"setups-study/{setup}/vs_talk.md")
    for claim, written in zip(("C1", "C2", "C3"), row[1:4], strict=True):
        entry = matrix[claim][setup]
        verdict = re.split(r"[(:]", written.replace("**", ""))[0].strip()
        assert entry.startswith(verdict), (setup, claim, written, entry)
        assert_figures_from(written, entry + "\n" + claim_rows(vs_talk, claim), f"setups-study ({setup}, {claim})")
    spearman, mean = (n.strip() for n in row[4].split(","))
    *_, measured_spearman, _, measured_mean = agreement_row(vs_talk)
    assert agrees(spearman, measured_spearman) and agrees(mean, measured_mean), (setup, row[4])


def test_what_the_default_study_found():
    summary = read_doc("default-study/summary.md")
    measures = summary[summary.index("## Generalization measures") :]
    assert_figures_from(FOUND, measures, "docs/default-study/summary.md's generalization measures")
    low, high = re.search(r"(\d+)-(\d+) models", FOUND).groups()
    counts = {int(n) for n in re.findall(r"\(n=(\d+)\)", measures)}
    assert (min(counts), max(counts)) == (int(low), int(high))


DATASETS = section(README, "What they said when run here", "\n### ")


@pytest.mark.parametrize("dataset", ["anes96", "fair"])
def test_each_dataset_against_the_talk(dataset):
    """The README's bullet on a dataset: each verdict is its column's in the confirmed matrix, each number one of
    docs/datasets-study/summary.md's."""
    bullet = next(b for b in DATASETS.split("\n- ") if b.startswith(f"**{dataset}.**"))
    summary = read_doc("datasets-study/summary.md")
    matrix = conclusion_matrix(summary)
    said = re.findall(r"(C\d(?: and C\d)*) (?:is|are) (not testable|\w+)", bullet)  # "C1 and C3 are confirmed"
    assert said, bullet
    for claims, verdict in said:
        for claim in claims.split(" and "):
            assert matrix[claim][f"{dataset} ({dataset} data)"].startswith(verdict), (dataset, claim, verdict)
    assert_figures_from(bullet, summary, f"docs/datasets-study/summary.md ({dataset})")


@pytest.mark.parametrize(
    ("written", "source", "ok"),
    [
        ("0.811", "| all | 0.8106 |", True),
        ("0.811", "| all | 0.8116 |", False),
        ("+0.003", "Δ -0.0031", False),
        ("−0.19", "tau -0.191 (n=640)", True),
        ("1.554", "best SGD: 1.5540 (SGD lr 0.02)", True),
    ],
)
def test_a_number_agrees_only_with_itself_rounded(written, source, ok):
    assert agrees(written, source) is ok


def test_settings_are_not_taken_for_figures():
    text = "Adam lr 3e-3 (SAM 0.02) 0.800, p < 0.05, SAM rho 0.02, momentum 0.9, radius 0.1 (+0.05), rho +0.46"
    assert numbers(text) == ["0.800", "+0.05", "+0.46"]

"""Published tables equal the report of their committed records: the tables of what tuning
changed in docs/algorithms.md are `marl-bench report data/results/tuning-effect`'s, and its
table of the committed studies is `marl-bench tune --report`'s, as they print them today."""

from __future__ import annotations

from pathlib import Path

from benchmark.report import make_report
from benchmark.store import load_records
from benchmark.tune import studies_table

ROOT = Path(__file__).resolve().parent.parent


def test_the_tuning_effect_tables_in_the_docs_are_the_report_of_the_committed_records() -> None:
    report = make_report(load_records(ROOT / "data" / "results" / "tuning-effect"), "md")
    tables = [
        "### " + part.strip() for part in report.split("### ") if "what tuning changed" in part
    ]
    docs = (ROOT / "docs" / "algorithms.md").read_text()
    assert len(tables) == 2, "one table per env of the suite (pursuit, prison)"
    for table in tables:
        assert table in docs, table.splitlines()[0]


def test_the_studies_table_in_the_docs_is_that_of_the_committed_studies() -> None:
    assert studies_table() in (ROOT / "docs" / "algorithms.md").read_text()

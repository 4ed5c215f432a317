from __future__ import annotations

from exposure.report.render import spreadsheet_safe


def test_report_csv_cells_cannot_run_as_formulas() -> None:
    assert spreadsheet_safe('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("C0001") == "C0001"

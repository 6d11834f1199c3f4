"""The reproduction report and the headline numbers, on tables written here."""

from workbench import report


def test_collect_results_renders_paper_tables(tmp_path):
    (tmp_path / "t.csv").write_text("k,paper,ours\n1,0.25,0.5\n2,n/a,0.1\n")
    text = report.collect_results(tmp_path)
    assert text.splitlines()[2:] == ["| k | paper | ours | ours - paper |", "| --- | --- | --- | --- |",
                                     "| 1 | 0.25 | 0.5 | +0.25 |", "| 2 | n/a | 0.1 |  |"]


def test_the_quick_profile_is_labelled_as_reduced_sizes(tmp_path):
    text = report.render_report([], profile="quick", figures_dir=tmp_path, run_dir=tmp_path,
                                date="today", versions={})
    assert "**Quick profile: reduced sizes" in text and "not comparable with the papers'" in text


def test_headlines_name_the_row_and_its_measured_value(tmp_path):
    (tmp_path / "results.md").write_text(
        "| claim | setting | published | measured | verdict |\n| --- | --- | --- | --- | --- |\n"
        "| test accuracy | released | 96.6% | 96.63% | reproduced |\n"
        "| a \\| b | | 1 | 2 | partly |\n")
    assert report.headlines(tmp_path) == ["test accuracy (released): 96.63% [reproduced]",
                                          "a | b: 2 [partly]"]
    (tmp_path / "results.md").write_text(
        "| model | site | dead |\n|---|---|---|\n" + "| lenet5 | fc1 | 26 |\n" * 7)
    lines = report.headlines(tmp_path, limit=5, width=20)
    assert lines[0] == "lenet5: site fc1,..." and len(lines) == 6
    assert lines[-1] == "... 2 more rows in the report"
    assert report.headlines(tmp_path / "nothing") == []
    (tmp_path / "results.md").write_text(
        "| weights | claim | ours | runs |\n|---|---|---|---|\n| trained | found | 875.7 | 2 |\n")
    assert report.headlines(tmp_path) == ["found (trained): 875.7"]


def test_a_failed_notebook_shows_its_error_and_no_tables(tmp_path):
    # Its folder holds tables (an earlier run's, or written before the failure): none is shown.
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "results.md").write_text("| quantity | value |\n|---|---|\n| old | 1 |\n")
    (tmp_path / "nb" / "t.csv").write_text("k,paper,ours\nold,1,2\n")
    outcome = report.Outcome("nb", False, 1.5, tmp_path / "nb.ipynb", {"n": 2}, cell=3,
                             exec_count=2, source="boom()\nmore", error="NameError: boom")
    text = report.render_report([outcome], profile="tiny", figures_dir=tmp_path,
                                run_dir=tmp_path, date="today", versions={"python": "3"})
    assert "**0 of 1 notebooks ran**; failed: nb." in text
    assert "**Failed** in cell 3 (`In [2]`: `boom()`):" in text and "NameError: boom" in text
    assert "old" not in text and "Quick profile" not in text
    lines = report.summary([outcome], profile="tiny", figures_dir=tmp_path)
    assert lines[1] == "  nb: FAILED in cell 3 (2 s): NameError: boom"

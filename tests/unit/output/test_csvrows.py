"""Every CSV the twin writes says which code made its rows."""

import csv

from twin.host.provenance import git_commit
from twin.output import csvrows


def test_rows_without_a_commit_get_the_code_s_commit(tmp_path):
    path = csvrows.write_rows([{"size": 1, "busbw": 2.0}, {"size": 2, "busbw": 3.0}], tmp_path / "r.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["size", "busbw", "git_commit"]
    commit = git_commit()
    assert commit and all(r["git_commit"] == commit for r in rows), rows


def test_rows_that_carry_their_own_commit_keep_it(tmp_path, monkeypatch):
    monkeypatch.setattr(csvrows, "git_commit", lambda: "should-not-be-used")
    path = csvrows.write_rows([{"git_commit": "abc1234", "x": 1}], tmp_path / "r.csv")
    assert list(csv.DictReader(path.open())) == [{"git_commit": "abc1234", "x": "1"}]

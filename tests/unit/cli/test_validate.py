"""``twin validate``: every file read, one line per problem."""

from tests.locations import TOPOS
from twin.cli import main as cli


def test_a_good_file_is_summarized(capsys):
    assert cli.main(["validate", str(TOPOS / "ci-2site.yaml")]) == 0
    assert capsys.readouterr().out == f"{TOPOS / 'ci-2site.yaml'}: ok (2 sites, 4 workers, 1 links, span 1053 km)\n"


def test_a_bad_file_is_one_line_naming_file_field_and_reason(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nsites: []\n")
    assert cli.main(["validate", str(bad), str(TOPOS / "ci-2site.yaml")]) == 2
    out = capsys.readouterr()
    assert out.err == f"{bad}: line 2: sites: List should have at least 1 item after validation, not 0\n"
    assert out.out.startswith(f"{TOPOS / 'ci-2site.yaml'}: ok (")

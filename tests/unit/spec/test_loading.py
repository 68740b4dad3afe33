"""The one loading path of every input file: unreadable, not UTF-8, not YAML, not valid, each
one line naming the file (and the line and the field where there is one)."""

import pytest
from pydantic import Field

from tests.locations import TOPOS
from twin.errors import InputError
from twin.experiments.campaign import load_campaign
from twin.spec.loading import Document, FileModel, field_path, read_document, validate
from twin.spec.schedule import load_schedule
from twin.spec.topology import load_topology

LOADERS = [load_topology, load_campaign, load_schedule]


def problems(load, path) -> list[str]:
    with pytest.raises(InputError) as exc:
        load(path)
    return exc.value.problems


@pytest.mark.parametrize("load", LOADERS)
def test_every_file_kind_reports_a_yaml_error_with_its_line(load, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nsites: [\n  {name: a\n")
    (p,) = problems(load, f)
    assert p.startswith(f"{f}: line 4: not valid YAML: ")


@pytest.mark.parametrize("load", LOADERS)
def test_every_file_kind_reports_an_unreadable_file_in_one_line(load, tmp_path):
    assert problems(load, tmp_path / "missing.yaml") == \
        [f"{tmp_path / 'missing.yaml'}: cannot read file: No such file or directory"]


@pytest.mark.parametrize("load", LOADERS)
def test_every_file_kind_refuses_text_that_is_not_utf8(load, tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes("name: Zürich\n".encode("latin-1"))
    assert problems(load, f) == [f"{f}: not UTF-8 text (byte 7 cannot be decoded)"]


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just words\n"])
def test_every_file_kind_wants_a_mapping(load, text, tmp_path):
    f = tmp_path / "f.yaml"
    f.write_text(text)
    (p,) = problems(load, f)
    assert p.startswith(f"{f}: (top level): expected a mapping with name") or \
        p.startswith(f"{f}: (top level): expected a mapping with forward")


def test_topology_problems_from_a_file_name_their_line(tmp_path):
    text = (TOPOS / "ci-2site.yaml").read_text()
    assert "workers: 2" in text
    f = tmp_path / "t.yaml"
    f.write_text(text.replace("workers: 2", "workers: 0", 2))
    ps = problems(load_topology, f)
    lines = [n for n, line in enumerate(text.splitlines(), 1) if "workers: 2" in line][:2]
    assert ps == [f"{f}: line {lines[0]}: sites[0:beijing].workers: "
                  "Input should be greater than or equal to 1",
                  f"{f}: line {lines[1]}: sites[1:wuhan].workers: "
                  "Input should be greater than or equal to 1"]


def test_a_problem_found_after_the_fields_names_its_line_too(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nsites:\n  - {name: a, lat: 1, lon: 1}\n  - {name: b, lat: 2, lon: 2}\n"
                 "links:\n  - a: a\n    b: paris\n    rate: 1Gbit\n")
    assert problems(load_topology, f) == [f"{f}: line 7: links[0:a-paris].b: unknown site 'paris'"]


def test_a_missing_field_takes_the_line_of_what_encloses_it(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nsites:\n  - {name: a, lat: 1, lon: 1}\n  - {name: b, lat: 2}\n")
    assert problems(load_topology, f) == [f"{f}: line 4: sites[1:b].lon: Field required"]


def test_an_unknown_field_lists_the_known_ones(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nsites:\n  - {name: a, lat: 1, lon: 1, colour: red}\n")
    (p,) = problems(load_topology, f)
    assert p == f"{f}: line 3: sites[0:a].colour: unknown field (known: name, city, lat, lon, " \
                "workers, image, cpus, memory, fabric)"


class Inner(FileModel):
    size: int = Field(gt=0)


class Outer(FileModel):
    name: str
    items: list[Inner] = []


def test_validate_gives_one_line_per_problem_with_lines_and_labels(tmp_path):
    f = tmp_path / "o.yaml"
    f.write_text("name: o\nitems:\n  - size: 1\n  - size: -1\n  - {size: 2, extra: 1}\n")
    with pytest.raises(InputError) as exc:
        validate(Outer, read_document(f))
    assert exc.value.problems == [
        f"{f}: line 4: items[1].size: Input should be greater than 0",
        f"{f}: line 5: items[2].extra: unknown field (known: size)"]


def test_without_text_there_is_no_line():
    doc = Document("d.yaml", {"name": "o", "items": [{"size": 0}]})
    with pytest.raises(InputError) as exc:
        validate(Outer, doc)
    assert exc.value.problems == ["d.yaml: items[0].size: Input should be greater than 0"]


def test_field_paths_name_list_items_and_quote_odd_keys():
    data = {"sites": [{"name": "wuhan"}], "links": [{"a": "x", "b": "y"}], "odd key": 1}
    assert field_path(("sites", 0, "workers"), data) == "sites[0:wuhan].workers"
    assert field_path(("links", 0), data) == "links[0:x-y]"
    assert field_path(("odd key",), data) == "'odd key'"
    assert field_path(("links", 5, "a"), data) == "links[5].a"
    assert field_path((), data) == "(top level)"


def test_a_document_knows_the_line_of_nested_values(tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text("a:\n  b:\n    - 1\n    - {c: 2}\nd: 3\n")
    doc = read_document(f)
    assert doc.data == {"a": {"b": [1, {"c": 2}]}, "d": 3}
    assert [doc.line(loc) for loc in [("a",), ("a", "b"), ("a", "b", 0), ("a", "b", 1, "c"),
                                      ("d",), ("a", "nope"), ("nope",), ()]] == \
        [1, 2, 3, 4, 5, 1, None, None]

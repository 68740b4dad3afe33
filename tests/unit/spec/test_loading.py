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


# ---- what no input file needs: refused in read_document, for every kind of file ------------

import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from twin.spec.loading import MAX_FILE_BYTES, MAX_NESTING, MAX_PROBLEMS  # noqa: E402


def only_problem(load, path) -> str:
    ps = problems(load, path)
    assert len(ps) == 1, ps
    return ps[0]


@pytest.mark.parametrize("load", LOADERS)
def test_a_key_given_twice_is_refused_with_both_lines(load, tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("name: a\nsites:\n  - name: x\n    workers: 2\n    workers: 3\nname: b\n")
    ps = problems(load, f)
    assert ps == [f"{f}: line 4: sites[0:x].workers: given twice (lines 4 and 5); a key may "
                  "appear once",
                  f"{f}: line 1: name: given twice (lines 1 and 6); a key may appear once"]


def test_the_twice_given_workers_of_a_shipped_topology_are_found(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text((TOPOS / "ci-2site.yaml").read_text().replace(
        "    workers: 2\n", "    workers: 2\n    workers: 3\n", 1))
    assert "sites[0:beijing].workers: given twice (lines 12 and 13)" in only_problem(load_topology, f)


def test_merge_keys_may_be_overridden(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("name: t\nsites:\n  - &a {name: a, lat: 1, lon: 1}\n  - <<: *a\n    name: b\n"
                 "links:\n  - {a: a, b: b, rate: 1Gbit}\n")
    assert [s.name for s in load_topology(f).sites] == ["a", "b"]


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize("text", ["name: " + "[" * 100_000 + "]" * 100_000 + "\n",
                                  "name: t\nsites: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
                                  "name:\n" + "".join(" " * i + "- \n" for i in range(1, 400))])
def test_deep_nesting_is_one_line_not_a_recursion_error(load, text, tmp_path):
    f = tmp_path / "deep.yaml"
    f.write_text(text)
    p = only_problem(load, f)
    assert p.startswith(f"{f}: line ") and f"nested deeper than {MAX_NESTING} levels" in p


def test_nesting_made_by_aliases_counts_too(tmp_path):
    f = tmp_path / "chain.yaml"
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 40)] + ["name: *a39"]
    f.write_text("\n".join(lines) + "\n")
    assert "nested deeper than 20 levels of lists and mappings (its aliases expanded)" in \
        only_problem(load_topology, f)


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path):
    f = tmp_path / "self.yaml"
    f.write_text("name: t\nsites: &s\n  - *s\n")
    assert only_problem(load_topology, f) == \
        f"{f}: line 2: an alias inside its own anchor: the value would contain itself"


def test_aliases_that_multiply_values_are_refused_at_once(tmp_path):
    f = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 10) + "]"
              for i in range(1, 9)]
    f.write_text("\n".join(lines + ["name: *i"]) + "\n")  # 10^9 strings
    t0 = time.monotonic()
    p = only_problem(load_topology, f)
    assert time.monotonic() - t0 < 5
    assert "holds more than 100,000 values (aliases expanded)" in p


def test_a_shared_value_may_be_used_more_than_once(tmp_path):
    f = tmp_path / "share.yaml"
    f.write_text("name: t\nsites:\n  - {name: a, lat: 1, lon: 1, fabric: &f {rate: 100Gbit}}\n"
                 "  - {name: b, lat: 2, lon: 2, fabric: *f}\nlinks: [{a: a, b: b, rate: 1Gbit}]\n")
    assert [s.fabric.rate for s in load_topology(f).sites] == [100e9, 100e9]


@pytest.mark.parametrize("load", LOADERS)
def test_control_characters_are_one_line_with_their_line(load, tmp_path):
    f = tmp_path / "ctrl.yaml"
    f.write_bytes(b"name: t\ndescription: a\x01b\n")
    assert only_problem(load, f) == f"{f}: line 2: not valid YAML: character #x0001 is not allowed"


@pytest.mark.parametrize("load", LOADERS)
def test_a_nul_byte_is_not_text(load, tmp_path):
    f = tmp_path / "nul.yaml"
    f.write_bytes(b"name: t\n\nx: \x00\n")
    assert only_problem(load, f) == f"{f}: line 3: a NUL byte; not a text file"


@pytest.mark.parametrize("load", LOADERS)
def test_a_file_larger_than_the_limit_is_refused_unread(load, tmp_path):
    f = tmp_path / "big.yaml"
    f.write_text("name: t\n" + "# padding\n" * (MAX_FILE_BYTES // 10))
    assert only_problem(load, f) == \
        f"{f}: larger than 256 KiB, the most the twin reads from such a file"


def test_a_device_that_never_ends_is_refused(tmp_path):
    assert only_problem(load_topology, "/dev/zero") == \
        "/dev/zero: larger than 256 KiB, the most the twin reads from such a file"


def test_a_fifo_without_a_writer_reads_as_empty_instead_of_hanging(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    result: list = []
    t = threading.Thread(target=lambda: result.append(problems(load_topology, fifo)), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading a FIFO with no writer hung"
    assert result == [[f"{fifo}: (top level): expected a mapping with name, sites"]]


def test_a_directory_is_one_line(tmp_path):
    assert only_problem(load_topology, tmp_path) == f"{tmp_path}: cannot read file: Is a directory"


def test_a_number_of_thousands_of_digits_is_one_line(tmp_path):
    f = tmp_path / "n.yaml"
    f.write_text("name: t\nmtu: " + "9" * 5000 + "\n")
    assert only_problem(load_topology, f) == f"{f}: line 2: a number of 5000 characters; at most 100"


def test_a_byte_order_mark_is_dropped(tmp_path):
    f = tmp_path / "bom.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + (TOPOS / "ci-2site.yaml").read_bytes())
    assert load_topology(f).name == "ci-2site"


def test_thousands_of_problems_are_listed_up_to_a_limit_then_counted(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: t\nsites:\n" + "  - {name: a, lat: 100, lon: 1}\n" * 200)
    ps = problems(load_topology, f)
    assert len(ps) == MAX_PROBLEMS + 1
    assert ps[-1] == f"{f}: {200 - MAX_PROBLEMS} more problems not shown"


def test_a_csv_of_millions_of_columns_is_refused_in_seconds(tmp_path):
    from twin.spec.loading import read_table
    f = tmp_path / "wide.csv"
    f.write_text("a," * 4_000_000 + "row_id\n")
    t0 = time.monotonic()
    with pytest.raises(InputError) as exc:
        read_table(f, ["row_id", "status"], "a campaign CSV")
    assert time.monotonic() - t0 < 10  # ~0.5 s here
    assert exc.value.problems == [f"{f}: line 1: not a campaign CSV: no column status"]


def test_a_file_of_values_at_the_size_limit_is_refused_in_seconds(tmp_path):
    f = tmp_path / "flow.yaml"
    f.write_text("name: [" + "1," * 130_000 + "1]\n")
    t0 = time.monotonic()
    p = only_problem(load_topology, f)
    assert time.monotonic() - t0 < 15  # ~3 s here: PyYAML composes ~40,000 values a second
    assert p == f"{f}: line 1: holds more than 100,000 values (aliases expanded); no input file " \
                "needs that many"

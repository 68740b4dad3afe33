"""Every reader of an input file, over arbitrary bytes and arbitrary nesting: it loads, or it
raises InputError whose every line names the file; and each input is done within a bound.

The bound is per example (hypothesis' deadline), generous for a noisy 2-core machine: these
inputs are at most a few KB and take milliseconds; what the deadline catches is a reader that
spends seconds (or forever) on a small adversarial file. Large adversarial files have their own
tests (test_loading.py, test_topology.py), each timed alone.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.locations import TOPOS
from twin.cli.validate import summary
from twin.emulation import runtime
from twin.errors import InputError, TwinError
from twin.experiments.campaign import FIELDS, campaign_rows, load_campaign
from twin.measure.noise import read_rows
from twin.output import campaign_report
from twin.spec.loading import MAX_NESTING, read_document
from twin.spec.schedule import load_schedule
from twin.spec.topology import load_topology

PER_INPUT = settings(max_examples=150, deadline=timedelta(seconds=5),
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow, HealthCheck.data_too_large])

READERS: dict[str, Callable[[Path], object]] = {
    "topology": load_topology,
    "campaign": load_campaign,
    "schedule": load_schedule,
    "any of them (twin validate)": lambda p: summary(read_document(p)),
    "campaign CSV (report)": campaign_report.read,
    "campaign CSV (resume)": lambda p: campaign_rows(p, "t"),
    "determinism CSV (noise)": lambda p: read_rows([p]),
}
YAML_READERS = ["topology", "campaign", "schedule", "any of them (twin validate)"]
CSV_READERS = ["campaign CSV (report)", "campaign CSV (resume)", "determinism CSV (noise)"]


def loads_or_names_the_file(read: Callable[[Path], object], path: Path) -> None:
    try:
        read(path)
    except InputError as exc:
        assert exc.problems
        for line in exc.problems:
            assert line.startswith(f"{path}: ") and "\n" not in line, line


# ---- arbitrary bytes, for every reader -------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(READERS))
@PER_INPUT
@given(raw=st.one_of(st.binary(max_size=4096), st.text(max_size=2048).map(str.encode)))
def test_arbitrary_bytes(kind, raw, tmp_path):
    f = tmp_path / "input"
    f.write_bytes(raw)
    loads_or_names_the_file(READERS[kind], f)


# ---- arbitrary text made of what YAML and CSV are made of ------------------------------------

YAML_ALPHABET = st.sampled_from(list("[]{}:,-?&*!|>'\"%@`#\n \t") + ["name", "sites", "nodes",
                                 "<<", "&a", "*a", "1e999", ".nan", ".inf", "~", "0x1F",
                                 "2001-12-14", "!!binary", "!!python/object:os.system", "\x85",
                                 "\ufeff", "\x01", "sweep", "topology"])


@pytest.mark.parametrize("kind", YAML_READERS)
@PER_INPUT
@given(parts=st.lists(YAML_ALPHABET, max_size=300))
def test_text_of_yaml_punctuation(kind, parts, tmp_path):
    f = tmp_path / "input.yaml"
    f.write_text("".join(parts))
    loads_or_names_the_file(READERS[kind], f)


# ---- arbitrary nesting, deeper than any file may go ------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=10))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=60)


def nested(depth: int, leaf: object) -> object:
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"k": leaf}
    return leaf


@pytest.mark.parametrize("kind", YAML_READERS)
@PER_INPUT
@given(doc=documents, key=st.sampled_from(["name", "sites", "links", "schedule", "sweep",
                                           "nodes", "model", "extra"]),
       depth=st.integers(0, 3 * MAX_NESTING), as_json=st.booleans())
def test_arbitrary_nesting(kind, doc, key, depth, as_json, tmp_path):
    data = {key: nested(depth, doc)}
    f = tmp_path / "input.yaml"
    f.write_text(json.dumps(data) if as_json else yaml.safe_dump(data))
    loads_or_names_the_file(READERS[kind], f)


@pytest.mark.parametrize("kind", YAML_READERS)
@settings(PER_INPUT, max_examples=40)  # each takes up to 0.3 s: the scanner's 1,024-character look-ahead
@given(depth=st.integers(0, 20_000), style=st.sampled_from(["[", "{a: ", "- "]))
def test_nesting_written_by_hand(kind, depth, style, tmp_path):
    if style == "- ":
        text = "name:\n" + "".join(" " * (i + 1) + "-\n" for i in range(min(depth, 500)))
    else:
        close = "]" if style == "[" else "}"
        text = "name: " + style * depth + "1" + close * depth + "\n"
    f = tmp_path / "input.yaml"
    f.write_text(text)
    loads_or_names_the_file(READERS[kind], f)


# ---- valid documents with one value replaced by anything -------------------------------------

TOPOLOGY = yaml.safe_load((TOPOS / "ci-2site.yaml").read_text())


@PER_INPUT
@given(path=st.sampled_from([("name",), ("mtu",), ("scale", "bandwidth"), ("sites", 0, "workers"),
                             ("sites", 1, "fabric"), ("links", 0, "rate"), ("links", 0, "queue"),
                             ("links", 0, "delay"), ("reservations", 0, "rate"),
                             ("reservations", 0, "udp_ports")]),
       value=documents)
def test_a_topology_with_any_value_anywhere(path, value, tmp_path):
    doc = json.loads(json.dumps(TOPOLOGY))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    f = tmp_path / "t.yaml"
    f.write_text(yaml.safe_dump(doc))
    loads_or_names_the_file(load_topology, f)


# ---- CSVs: a real header, then anything ------------------------------------------------------

cells = st.one_of(st.text(max_size=12), st.sampled_from(["ok", "failed", "t", "nan", "inf", "",
                                                          "1e999", '"', "\x00", "\r"]))


@pytest.mark.parametrize("kind", CSV_READERS)
@PER_INPUT
@given(rows=st.lists(st.lists(cells, max_size=len(FIELDS) + 2), max_size=12),
       header=st.sampled_from(["campaign", "determinism", "none"]))
def test_a_csv_with_a_real_header_and_any_rows(kind, rows, header, tmp_path):
    import csv
    names = {"campaign": FIELDS, "determinism": ["controller", "metric", "phase", "owd_p99_ms",
                                                 "propagation_ms", "line_late_share"],
             "none": []}[header]
    f = tmp_path / "input.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        if names:
            w.writerow(names)
        w.writerows(rows)
    loads_or_names_the_file(READERS[kind], f)


# ---- the run's state file: it loads, or one line naming it and 'twin clean' ------------------

@PER_INPUT
@given(raw=st.one_of(st.binary(max_size=2048), documents.map(lambda d: json.dumps(d).encode())))
def test_the_state_file(raw, tmp_path_factory, monkeypatch):
    run_dir = tmp_path_factory.mktemp("run")
    monkeypatch.setenv("TWIN_RUN_DIR", str(run_dir))
    state = run_dir / "state.json"
    state.write_bytes(raw)
    try:
        runtime.load_state()
    except TwinError as exc:
        msg = str(exc)
        assert msg.startswith(f"{state}: unreadable state (") and msg.endswith("run 'twin clean'")
        assert "\n" not in msg

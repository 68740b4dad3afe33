"""The running twin's state file as read back (runtime.load_state): a damaged one is one line
telling to run 'twin clean', never a traceback."""

import json

import pytest

from twin.emulation import runtime
from twin.emulation.delayline import DelayLineSpec, delayline_params
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.emulation.tc import Shaping
from twin.errors import TwinError
from twin.host import rundirs


@pytest.fixture
def state_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_RUN_DIR", str(tmp_path))
    return rundirs.state_file()


def a_state() -> TwinState:
    return TwinState(run_id="r1", topology="ci-2site", topology_file="t.yaml", mechanism="delayline",
                     datapath="user", controller="none", scale="x", owner_pid=1, started=1.5,
                     workers=[WorkerInfo("beijing1", "beijing", 1, "10.1.0.1", "m", "tw1", 1)],
                     wan=[WanInfo("beijing", "wuhan", "tw1", "tw2", 3, 3, "i1", "i2", 1368.0,
                                  0.0067, 0.0, 0.0, 4e11, 1e8, 100000, a_delay_line(), 0.0, [34])])


def a_delay_line() -> DelayLineSpec:
    return DelayLineSpec("tw1-tw2", "i1", "i2", "/run/links/tw1-tw2.json", 5,
                         delayline_params(Shaping(rate_bps=1e8, delay_s=0.0067, class_dscps=(34,))))


def test_a_saved_state_reads_back(state_file):
    runtime.save_state(a_state())
    assert runtime.load_state() == a_state()


@pytest.mark.parametrize("text,reason", [
    ("", "Expecting value: line 1 column 1 (char 0)"),
    ('{"run_id": "r1", "topol', "Unterminated string starting at: line 1 column 18 (char 17)"),
    ("[1, 2]", "a JSON list, not an object"),
    ('"x"', "a JSON str, not an object"),
    ('{"run_id": "r1"}', "TwinState.__init__() missing 8 required positional arguments"),
    ("[" * 100_000, "maximum recursion depth exceeded"),
], ids=["empty", "cut short", "a list", "a string", "fields missing", "deep"])
def test_a_damaged_state_file_is_one_line_naming_twin_clean(state_file, text, reason):
    state_file.write_text(text)
    with pytest.raises(TwinError) as exc:
        runtime.load_state()
    msg = str(exc.value)
    assert msg.startswith(f"{state_file}: unreadable state (") and reason in msg
    assert msg.endswith("); run 'twin clean'") and "\n" not in msg


@pytest.mark.parametrize("change,reason", [
    ({"owner_pid": "12"}, "owner_pid is str, not int"),
    ({"log_dir": 5}, "log_dir is int, not str"),
    ({"workers": [1]}, "argument after ** must be a mapping, not int"),
    ({"workers": [{"name": "x"}]}, "missing 6 required positional arguments"),
    ({"started": True}, "started is bool, not float"),
    ({"switches": {"tw1": 3}}, "switches['tw1'] is int, not str"),
])
def test_a_state_with_fields_of_the_wrong_kind_is_damaged_too(state_file, change, reason):
    state_file.write_text(json.dumps(dict(a_state().to_dict(), **change)))
    with pytest.raises(TwinError) as exc:
        runtime.load_state()
    assert reason in str(exc.value) and str(exc.value).endswith("run 'twin clean'")


@pytest.mark.parametrize("change,reason", [
    ({"pid": "5"}, "wan[0].delayline.pid is str, not int"),
    ({"params": [1]}, "cannot convert dictionary update sequence element #0 to a sequence"),
    ({"params": {"delay_s": 0.1}}, "wan[0].delayline.params has no 'jitter_s'"),
    ({"params": dict(a_delay_line().params, class_dscps=["x"])},
     "wan[0].delayline.params.class_dscps[0] is str, not int"),
])
def test_a_delay_line_of_the_wrong_kind_is_damaged_too(state_file, change, reason):
    data = a_state().to_dict()
    data["wan"][0]["delayline"].update(change)
    state_file.write_text(json.dumps(data))
    with pytest.raises(TwinError) as exc:
        runtime.load_state()
    assert reason in str(exc.value) and str(exc.value).endswith("run 'twin clean'")


def test_a_state_file_that_is_not_text_is_one_line(state_file):
    state_file.write_bytes(b'{"run_id": "\xff"}')
    with pytest.raises(TwinError) as exc:
        runtime.load_state()
    assert str(exc.value) == (f"{state_file}: unreadable state (not UTF-8 text (byte 12 cannot be "
                              "decoded)); run 'twin clean'")


def test_no_state_file_is_no_twin(state_file):
    assert runtime.load_state() is None

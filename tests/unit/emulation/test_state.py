"""The state file: what bring-up records must come back field for field in detached commands."""

import json

import pytest

from twin.emulation.delayline import DelayLineSpec, delayline_params
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.emulation.tc import Shaping


def recorded_state() -> TwinState:
    """A detpath run on delay lines: one WAN link with its process, one without (netem)."""
    line = DelayLineSpec(
        name="tw-d1", end_a="tw-d1a", end_b="tw-d1b", params_file="/run/twin/links/tw-d1.json",
        pid=4242, params=delayline_params(Shaping(rate_bps=100e6, delay_s=0.0067,
                                                  jitter_s=0.0001, loss=0.001,
                                                  class_dscps=(46, 34))))
    state = TwinState(run_id="20240101-000000-abcdef", topology="ci-2site",
                      topology_file="topologies/ci-2site.yaml", mechanism="delayline",
                      datapath="user", controller="detpath", scale="bandwidth 1/1000",
                      owner_pid=17, started=1700000000.25, controller_pid=99, mtu=9000,
                      log_dir="/var/lib/twin/runs/x",
                      switches={"tw1": "beijing", "tw2": "wuhan"})
    state.workers.append(WorkerInfo(name="beijing-1", site="beijing", index=1, ip="10.1.0.1",
                                    mac="02:00:00:00:01:01", switch="tw1", port=1,
                                    container="c0ffee", pid=1234, port_intf="tw1-eth1"))
    state.wan.append(WanInfo(a="beijing", b="wuhan", switch_a="tw1", switch_b="tw2", port_a=3,
                             port_b=3, intf_a="tw1-eth3", intf_b="tw2-eth3", km=1370.5,
                             delay_s=0.0067, jitter_s=0.0001, loss=0.001, rate_bps=400e9,
                             emulated_bps=400e6, queue_bytes=980_000, delayline=line,
                             reserved_bps=200e6, class_dscps=[46, 34]))
    state.wan.append(WanInfo(a="wuhan", b="shanghai", switch_a="tw2", switch_b="tw3", port_a=4,
                             port_b=1, intf_a="tw2-eth4", intf_b="tw3-eth1", km=800.0,
                             delay_s=0.004, jitter_s=0.0, loss=0.0, rate_bps=400e9,
                             emulated_bps=400e6, queue_bytes=500_000))
    return state


def test_state_with_a_delay_line_survives_the_state_file():
    state = recorded_state()
    back = TwinState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert back == state  # every field, the delay line's too
    assert isinstance(back.wan[0].delayline, DelayLineSpec)
    assert back.wan[0].delayline.pid == 4242
    assert back.wan[0].delayline.params["class_dscps"] == [46, 34]
    assert back.wan[1].delayline is None
    assert isinstance(back.workers[0], WorkerInfo)


def test_the_state_file_keeps_its_json_shape():
    data = json.loads(json.dumps(recorded_state().to_dict()))
    line = data["wan"][0]["delayline"]
    assert set(line) == {"name", "end_a", "end_b", "params_file", "pid", "params"}
    assert line["params"] == {"delay_s": 0.0067, "jitter_s": 0.0001, "loss": 0.001,
                              "down": False, "rate_bps": 100e6, "class_dscps": [46, 34],
                              "comp_first_s": 0.0, "comp_transit_ab_s": 0.0,
                              "comp_transit_ba_s": 0.0, "site_a": 0, "site_b": 0}
    assert data["wan"][1]["delayline"] is None


def test_a_state_file_with_unknown_delay_line_fields_is_refused():
    data = recorded_state().to_dict()
    data["wan"][0]["delayline"]["colour"] = "blue"
    with pytest.raises(TypeError):  # runtime.load_state turns it into "unreadable state"
        TwinState.from_dict(data)

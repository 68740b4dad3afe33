"""BFD's timers follow time dilation, as every other timer of the fabric does."""

from tests.unit.emulation.test_compensation import link, state
from twin.emulation import liveness
from twin.emulation.state import TwinState


def _state(dilation: float) -> TwinState:
    st = state(link("a", "b", 0.001))
    st.dilation = dilation
    return st


def test_bfd_runs_k_times_slower_under_dilation_so_detection_keeps_its_fabric_time():
    assert liveness.bfd_interval_ms(_state(1.0)) == liveness.BFD_INTERVAL_MS
    assert liveness.bfd_interval_ms(_state(4.0)) == 4 * liveness.BFD_INTERVAL_MS
    detect_fabric_ms = _state(8.0).time.fabric_s(
        liveness.BFD_DETECT_MULT * liveness.bfd_interval_ms(_state(8.0)) / 1e3) * 1e3
    assert detect_fabric_ms == liveness.BFD_DETECT_MULT * liveness.BFD_INTERVAL_MS


def test_enable_bfd_asks_each_wan_port_for_the_dilated_interval(monkeypatch):
    calls = []
    monkeypatch.setattr(liveness, "run_argv", lambda argv, **kw: calls.append(argv))
    liveness.enable_bfd(_state(2.0))
    assert [c[4] for c in calls] == ["ab", "ba"]
    assert all("bfd:min_tx=40" in c and "bfd:min_rx=40" in c for c in calls), calls

"""Time dilation: what the host plays and what the twin reports, for every factor it accepts."""

import pytest

from twin.plan.dilation import LINUX_RTO_MIN_S, MAX_DILATION, Dilation
from twin.spec.topology import Topology


def ci2site(**scale) -> Topology:
    return Topology.model_validate({
        "name": "t", "scale": {"bandwidth": "1/1000", **scale},
        "sites": [{"name": "a", "lat": 39.9, "lon": 116.4, "workers": 2},
                  {"name": "b", "lat": 30.6, "lon": 114.3, "workers": 2}],
        "links": [{"a": "a", "b": "b", "rate": "400Gbit"}]})


@pytest.mark.parametrize("k", [1, 2, 4, 8, 64])
def test_host_plays_delays_times_k_and_rates_over_k_and_reports_back_in_fabric_units(k):
    d = Dilation(k)
    assert d.host_s(0.0067) == pytest.approx(0.0067 * k)
    assert d.host_bps(400e6) == pytest.approx(400e6 / k)
    # what the host measures on such a link is the fabric's own figure once converted back
    assert d.fabric_s(d.host_s(0.0134)) == pytest.approx(0.0134)
    assert d.fabric_bps(d.host_bps(400e6)) == pytest.approx(400e6)
    assert d.rto_min_s == pytest.approx(LINUX_RTO_MIN_S * k)


@pytest.mark.parametrize("k", [0.5, 0, -1, MAX_DILATION * 2])
def test_factors_outside_the_range_are_refused(k):
    with pytest.raises(ValueError, match="time dilation must be in"):
        Dilation(k)


def test_the_topology_scale_time_field_dilates_and_is_described():
    topo = ci2site(time=4)
    assert topo.scale.dilation == Dilation(4)
    assert "time dilated x4" in topo.scale.describe()
    assert ci2site().scale.dilation == Dilation(1) and "dilated" not in ci2site().scale.describe()
    # --scale keeps the factor; --dilation replaces it
    assert topo.with_scale("1/4000").scale.time == 4
    assert topo.with_dilation(2).scale.time == 2 and topo.with_dilation(2).scale.bandwidth == 1e-3


@pytest.mark.parametrize("bad", ["4", True, 0.5, 1000])
def test_a_bad_scale_time_is_refused_naming_the_field(bad):
    with pytest.raises(Exception, match="time"):
        ci2site(time=bad)


def test_a_dilated_link_is_shaped_k_times_slower_and_longer():
    from twin.emulation.state import WanInfo
    w = WanInfo(a="a", b="b", switch_a="s1", switch_b="s2", port_a=1, port_b=1, intf_a="x",
                intf_b="y", km=1370.0, delay_s=0.0067, jitter_s=0.0001, loss=0.01, rate_bps=400e9,
                emulated_bps=400e6, queue_bytes=1_000_000)
    real, slow = w.shaping(1500, Dilation(1)), w.shaping(1500, Dilation(8))
    assert slow.delay_s == pytest.approx(real.delay_s * 8)
    assert slow.jitter_s == pytest.approx(real.jitter_s * 8)
    assert slow.rate_bps == pytest.approx(real.rate_bps / 8)
    assert slow.loss == real.loss  # a share of frames: no time in it

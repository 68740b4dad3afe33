"""Static shortest-delay forwarding computed from the model (controller 'none')."""


from tests.locations import TOPOS
from twin.emulation.forwarding import static_flows
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.plan.addressing import switch_name, worker_mac
from twin.spec.topology import load_topology


def synthetic_state(topo):
    """The state build_twin records, with ports numbered as Mininet numbers them."""
    idx = {s.name: i for i, s in enumerate(topo.sites, 1)}
    st = TwinState(run_id="r", topology=topo.name, topology_file="", mechanism="delayline",
                   datapath="user", controller="none", scale="", owner_pid=0, started=0)
    next_port = {}
    for s in topo.sites:
        st.switches[switch_name(idx[s.name])] = s.name
        for k in range(1, s.workers + 1):
            sw = switch_name(idx[s.name])
            next_port[sw] = next_port.get(sw, 0) + 1
            st.workers.append(WorkerInfo(f"{s.name}{k}", s.name, k, "", worker_mac(idx[s.name], k),
                                         sw, next_port[sw]))
    for link in topo.links:
        sa, sb = switch_name(idx[link.a]), switch_name(idx[link.b])
        next_port[sa] += 1
        next_port[sb] += 1
        st.wan.append(WanInfo(link.a, link.b, sa, sb, next_port[sa], next_port[sb], "", "", 0,
                              topo.link_delay(link), 0, 0, link.rate, 0, 0))
    return st


def test_every_switch_has_one_exact_flow_per_worker():
    topo = load_topology(TOPOS / "fntf-4site.yaml")
    st = synthetic_state(topo)
    flows = static_flows(topo, st)
    assert sorted(flows) == sorted(st.switches) and len(flows) == len(topo.sites)
    for lines in flows.values():
        assert len(lines) == len(st.workers)
        assert all(f.startswith("priority=100,dl_dst=02:00:00:00:") for f in lines)


def test_local_workers_go_to_their_own_port_and_remote_ones_along_the_shortest_delay():
    topo = load_topology(TOPOS / "fntf-4site.yaml")
    st = synthetic_state(topo)
    flows = static_flows(topo, st)
    beijing_sw = switch_name(1)
    by_mac = {f.split("dl_dst=")[1].split(",")[0]: int(f.rsplit(":", 1)[1]) for f in flows[beijing_sw]}
    b1 = next(w for w in st.workers if w.name == "beijing1")
    assert by_mac[b1.mac] == b1.port
    # Beijing -> Guangzhou has a direct chord; it is shorter than via Shanghai.
    g1 = next(w for w in st.workers if w.name == "guangzhou1")
    chord = next(w for w in st.wan if {w.a, w.b} == {"beijing", "guangzhou"})
    assert by_mac[g1.mac] == chord.port_a


def test_forty_city_paths_reach_every_worker():
    topo = load_topology(TOPOS / "fntf-40city.yaml")
    st = synthetic_state(topo)
    flows = static_flows(topo, st)
    assert len(flows) == 40
    assert all(len(lines) == 40 for lines in flows.values())

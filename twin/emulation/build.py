"""Topology model -> live Twin: switches per site, worker containers, shaped links, forwarding.

Addressing is deterministic (site i, worker k -> 10.i.0.k, MAC 02:00:00:00:ii:kk) so runs,
CSVs and controllers agree on who is who without asking the network.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from mininet.node import RemoteController

from twin.emulation import controller as ctl
from twin.emulation.delayline import delayline_params, update_delayline
from twin.emulation.forwarding import install_static_arp, install_static_flows
from twin.emulation.links import apply_classes, apply_nic_classes
from twin.emulation.net import Twin
from twin.emulation.nodes import create_container, docker_client
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.images import build_worker, image_exists
from twin.host.processes import parallel
from twin.plan.addressing import (
    switch_name,
    worker_intf_name,
    worker_ip,
    worker_mac,
    worker_name,
)
from twin.plan.reservations import admit_reservations, reserved_per_link
from twin.spec.topology import Topology

Progress = Callable[[str], None]


def mbit(bps: float) -> float:
    return bps / 1e6


def build_twin(topo: Topology, topology_file: str, run_id: str, controller: str = "none",
               progress: Progress = lambda s: None) -> tuple[Twin, TwinState]:
    """Bring the topology up; on any failure everything started so far is removed."""
    from twin.host.capabilities import link_mechanism, ovs_datapath
    state = TwinState(run_id=run_id, topology=topo.name, topology_file=topology_file,
                      mechanism=link_mechanism(), datapath=ovs_datapath(), controller=controller,
                      scale=topo.scale.describe(), owner_pid=0, started=time.time(), mtu=topo.mtu,
                      log_dir=str(rundirs.log_dir()))
    reservations = []
    if controller != "none":
        if controller not in ctl.APPS:
            raise TwinError(f"unknown controller {controller!r} (use none, {', '.join(ctl.APPS)})")
        if controller == "detpath":
            reservations = admit_reservations(topo)  # refuse before anything starts
    client = docker_client()
    default_image = topo.image or build_worker(client, log=progress)
    for i, s in enumerate(topo.sites):
        ref = s.image or default_image
        if not image_exists(client, ref):
            raise TwinError(f"{topology_file}: sites[{i}:{s.name}].image: image {ref!r} is not on "
                            "this machine (no registry is used; build or import it first)")
    net = Twin(run_id=run_id, mechanism=state.mechanism, datapath=state.datapath)
    site_index = {s.name: i for i, s in enumerate(topo.sites, 1)}

    progress(f"creating {len(topo.sites)} switches")
    switches = {}
    for s in topo.sites:
        name = switch_name(site_index[s.name])
        switches[s.name] = net.addSwitch(name)
        state.switches[name] = s.name

    jobs = [(s, k) for s, k in topo.workers()]
    progress(f"starting {len(jobs)} worker containers")

    def start(job):
        s, k = job
        return create_container(
            worker_name(s.name, k), s.image or default_image, run_id,
            nano_cpus=int(s.cpus * 1e9) if s.cpus else None, mem_limit=s.memory,
            labels={f"{rundirs.LABEL}.site": s.name})

    with ThreadPoolExecutor(8) as pool:
        containers = list(pool.map(start, jobs))

    progress("wiring workers to their site switches")
    for (s, k), container in zip(jobs, containers):
        i = site_index[s.name]
        name = worker_name(s.name, k)
        host = net.addDocker(name, container=container, ip=f"{worker_ip(i, k)}/8",
                             mac=worker_mac(i, k))
        sw = switches[s.name]
        rate = topo.emulated_rate(s.fabric.rate)
        link = net.addLink(host, sw, bw=mbit(rate), mtu=topo.mtu,
                           delay=f"{s.fabric.delay * 1e6:.0f}us" if s.fabric.delay else None)
        state.workers.append(WorkerInfo(
            name=name, site=s.name, index=k, ip=worker_ip(i, k), mac=worker_mac(i, k),
            switch=sw.name, port=sw.ports[link.intf2], port_intf=link.intf2.name,
            container=container.id,
            pid=int(container.attrs["State"]["Pid"])))

    progress(f"shaping {len(topo.links)} long-haul links ({state.mechanism})")
    for link in topo.links:
        sa, sb = switches[link.a], switches[link.b]
        delay = topo.link_delay(link)
        rate = topo.emulated_rate(link.rate)
        queue = topo.link_queue_bytes(link)
        ml = net.addLink(sa, sb, bw=mbit(rate), delay=f"{delay * 1e6:.0f}us", mtu=topo.mtu,
                         jitter=f"{link.jitter * 1e6:.0f}us" if link.jitter else None,
                         loss=link.loss * 100 if link.loss else None, queue_bytes=queue)
        state.wan.append(WanInfo(
            a=link.a, b=link.b, switch_a=sa.name, switch_b=sb.name,
            port_a=sa.ports[ml.intf1], port_b=sb.ports[ml.intf2],
            intf_a=ml.intf1.name, intf_b=ml.intf2.name, km=topo.link_distance_km(link),
            delay_s=delay, jitter_s=link.jitter, loss=link.loss, rate_bps=link.rate,
            emulated_bps=rate, queue_bytes=queue, delayline=ml.delayline))

    proc = None
    if controller != "none":
        model_file = ctl.write_description(state, reservations)
        progress(f"starting controller {controller} (os-ken) on 127.0.0.1:{ctl.CONTROLLER_PORT}")
        proc = ctl.start(controller, model_file)
        state.controller_pid = proc.pid
        net.addController(RemoteController("c0", ip="127.0.0.1", port=ctl.CONTROLLER_PORT))
    progress("starting switches")
    net.start()
    net.wait_ports_up()
    if reservations:
        progress(f"isolating {len(reservations)} reservation(s) in HTB classes on WAN egress ports")
        load = reserved_per_link(reservations)
        for w in state.wan:
            reserved = load.get(frozenset((w.a, w.b)), 0.0)
            # where netem carries the delay, it is the queue of every class (no delay line)
            netem = state.mechanism == "netem" and not w.delayline
            stage = w.shaping(topo.mtu) if netem else None
            for intf in (w.intf_a, w.intf_b):
                apply_classes(intf, w.emulated_bps, reserved, w.queue_bytes,
                              dscp=reservations[0].dscp, rtt_s=2 * w.delay_s,
                              probe_dscp=reservations[0].probe_dscp, mtu=topo.mtu,
                              delay_stage=stage)
            w.reserved_bps = reserved
            w.class_dscps = [reservations[0].probe_dscp, reservations[0].dscp]
            if w.delayline:  # its classes are serialized apart from now on
                update_delayline(w.delayline, delayline_params(w.shaping(topo.mtu)))
        probe_ports = sorted({port for r in reservations
                              for port in r.udp_ports + r.replicated_udp_ports})
        job_ports = sorted({port for r in reservations for port in r.tcp_ports})
        progress("giving the reservations' classes to every worker link (NIC and switch port)")
        rates = {s.name: topo.emulated_rate(s.fabric.rate) for s in topo.sites}
        # a worker's link may carry all of its site's reservations
        site_reserved = {s.name: sum(r.rate_bps for r in reservations if s.name in (r.src, r.dst))
                         for s in topo.sites}

        def nic(w: WorkerInfo) -> None:
            for dev, pid in ((worker_intf_name(w.site, w.index), w.pid), (w.port_intf, None)):
                apply_nic_classes(dev, pid, rates[w.site], probe_ports, topo.mtu,
                                  reserved_bps=site_reserved[w.site], tcp_ports=job_ports,
                                  dscp=reservations[0].dscp, probe_dscp=reservations[0].probe_dscp)
        parallel(nic, state.workers)
    install_static_arp(state)
    if controller == "none":
        progress("installing static shortest-delay forwarding")
        install_static_flows(topo, state)
    else:
        info = ctl.wait_ready(model_file, proc.pid)
        progress(f"controller {controller}: {info.get('switches')} switches programmed"
                 + (f", {info['flows']} flows" if "flows" in info else "")
                 + (f", wiring of {info['wiring_verified']}/{info['wan_ports']} WAN ports "
                    "verified by LLDP" if "wan_ports" in info else ""))
    return net, state



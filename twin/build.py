"""Topology model -> live Twin: switches per site, worker containers, shaped links, forwarding.

Addressing is deterministic (site i, worker k -> 10.i.0.k, MAC 02:00:00:00:ii:kk) so runs,
CSVs and controllers agree on who is who without asking the network.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

from twin import paths
from twin.errors import TwinError
from twin.images import build_worker, image_exists
from mininet.node import RemoteController

from controllers.paths import primary_next_hops
from twin import controller as ctl
from twin.links import (DelayLineSpec, Shaping, apply_classes, apply_nic_classes,
                        delayline_params, ns_prefix, update_delayline)
from twin.net import Twin
from twin.nodes import create_container, docker_client
from twin.topology import Topology, worker_intf_name, worker_name

Progress = Callable[[str], None]


@dataclass
class WorkerInfo:
    name: str
    site: str
    index: int
    ip: str
    mac: str
    switch: str
    port: int
    container: str = ""
    pid: int = 0
    port_intf: str = ""  # the switch's interface towards this worker


@dataclass
class WanInfo:
    a: str
    b: str
    switch_a: str
    switch_b: str
    port_a: int
    port_b: int
    intf_a: str
    intf_b: str
    km: float
    delay_s: float
    jitter_s: float
    loss: float
    rate_bps: float
    emulated_bps: float
    queue_bytes: int
    delayline: Optional[dict] = None
    reserved_bps: float = 0.0
    class_dscps: list[int] = field(default_factory=list)  # detpath's classes on both ports

    def shaping(self, mtu: int = 1500) -> Shaping:
        """What the link's delay stage does now: its emulated rate, delay, jitter, loss and the
        traffic classes it serializes apart."""
        return Shaping(rate_bps=self.emulated_bps, delay_s=self.delay_s, jitter_s=self.jitter_s,
                       loss=self.loss, mtu=mtu, class_dscps=tuple(self.class_dscps))


@dataclass
class TwinState:
    """What a running twin is made of; saved to the state file for detach/exec/link/down."""

    run_id: str
    topology: str
    topology_file: str
    mechanism: str
    datapath: str
    controller: str
    scale: str
    owner_pid: int
    started: float
    controller_pid: int = 0
    mtu: int = 1500
    log_dir: str = ""  # the run's folder: controller and delay-line logs (paths.runs_dir)
    switches: dict[str, str] = field(default_factory=dict)  # switch name -> site
    workers: list[WorkerInfo] = field(default_factory=list)
    wan: list[WanInfo] = field(default_factory=list)

    def worker(self, name: str) -> WorkerInfo:
        for w in self.workers:
            if w.name == name:
                return w
        raise TwinError(f"no worker named {name!r}; workers are: "
                        + ", ".join(w.name for w in self.workers))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TwinState":
        d = dict(d)
        d["workers"] = [WorkerInfo(**w) for w in d.get("workers", [])]
        d["wan"] = [WanInfo(**w) for w in d.get("wan", [])]
        return cls(**d)


def switch_name(site_index: int) -> str:
    return f"{paths.prefix()}{site_index}"


def worker_ip(site_index: int, k: int) -> str:
    return f"10.{site_index}.{k // 250}.{k % 250}"


def worker_mac(site_index: int, k: int) -> str:
    return f"02:00:00:00:{site_index:02x}:{k:02x}"


def mbit(bps: float) -> float:
    return bps / 1e6


def build_twin(topo: Topology, topology_file: str, run_id: str, controller: str = "none",
               progress: Progress = lambda s: None) -> tuple[Twin, TwinState]:
    """Bring the topology up; on any failure everything started so far is removed."""
    from twin.capabilities import link_mechanism, ovs_datapath
    state = TwinState(run_id=run_id, topology=topo.name, topology_file=topology_file,
                      mechanism=link_mechanism(), datapath=ovs_datapath(), controller=controller,
                      scale=topo.scale.describe(), owner_pid=0, started=time.time(), mtu=topo.mtu,
                      log_dir=str(paths.log_dir()))
    reservations = []
    if controller != "none":
        if controller not in ctl.APPS:
            raise TwinError(f"unknown controller {controller!r} (use none, {', '.join(ctl.APPS)})")
        if controller == "detpath":
            reservations = ctl.admit_reservations(topo)  # refuse before anything starts
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
            labels={f"{paths.LABEL}.site": s.name})

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
        dl = ml.delayline
        state.wan.append(WanInfo(
            a=link.a, b=link.b, switch_a=sa.name, switch_b=sb.name,
            port_a=sa.ports[ml.intf1], port_b=sb.ports[ml.intf2],
            intf_a=ml.intf1.name, intf_b=ml.intf2.name, km=topo.link_distance_km(link),
            delay_s=delay, jitter_s=link.jitter, loss=link.loss, rate_bps=link.rate,
            emulated_bps=rate, queue_bytes=queue, delayline=asdict(dl) if dl else None))

    proc = None
    if controller != "none":
        model_file = ctl.write_model(state, reservations)
        progress(f"starting controller {controller} (os-ken) on 127.0.0.1:{ctl.CONTROLLER_PORT}")
        proc = ctl.start(controller, model_file)
        state.controller_pid = proc.pid
        net.addController(RemoteController("c0", ip="127.0.0.1", port=ctl.CONTROLLER_PORT))
    progress("starting switches")
    net.start()
    net.wait_ports_up()
    if reservations:
        progress(f"isolating {len(reservations)} reservation(s) in HTB classes on WAN egress ports")
        load = ctl.reserved_per_link(reservations)
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
                spec = DelayLineSpec(**w.delayline)
                update_delayline(spec, delayline_params(w.shaping(topo.mtu)))
                w.delayline = asdict(spec)
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
        _parallel(nic, state.workers)
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


def _parallel(fn, items) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fn, items))


def install_static_arp(state: TwinState) -> None:
    """Permanent neighbour entries in every worker: no ARP broadcast ever crosses the WAN."""
    def one(w: WorkerInfo) -> None:
        batch = "".join(
            f"neigh replace {o.ip} lladdr {o.mac} dev {w.name}-eth0 nud permanent\n"
            for o in state.workers if o.name != w.name)
        if batch:
            proc = subprocess.run(ns_prefix(w.pid) + ["ip", "-batch", "-"], input=batch,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise TwinError(f"static ARP in {w.name} failed: {proc.stderr.strip()}")
    _parallel(one, state.workers)


def next_hop_ports(topo: Topology, state: TwinState) -> dict[str, dict[str, int]]:
    """For each switch: destination site -> output port, along shortest one-way-delay paths."""
    port = {}
    for w in state.wan:
        port[(w.a, w.b)] = (w.switch_a, w.port_a)
        port[(w.b, w.a)] = (w.switch_b, w.port_b)
    table: dict[str, dict[str, int]] = {sw: {} for sw in state.switches}
    for src, hops in primary_next_hops(topo.graph()).items():
        for dst, hop in hops.items():
            sw, p = port[(src, hop)]
            table[sw][dst] = p
    return table


def static_flows(topo: Topology, state: TwinState) -> dict[str, list[str]]:
    """ovs-ofctl flow lines per switch: exact destination MAC -> port; everything else drops."""
    hops = next_hop_ports(topo, state)
    flows: dict[str, list[str]] = {sw: [] for sw in state.switches}
    for sw, site in state.switches.items():
        for w in state.workers:
            port = w.port if w.site == site else hops[sw][w.site]
            flows[sw].append(f"priority=100,dl_dst={w.mac},actions=output:{port}")
    return flows


def install_static_flows(topo: Topology, state: TwinState) -> None:
    def one(item: tuple[str, list[str]]) -> None:
        sw, lines = item
        proc = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flows", sw, "-"],
                              input="\n".join(lines) + "\n", capture_output=True, text=True)
        if proc.returncode != 0:
            raise TwinError(f"installing flows on {sw} failed: {proc.stderr.strip()}")
    _parallel(one, static_flows(topo, state).items())

"""Topology model -> live Twin, in stages: check the inputs, create the switches, start and wire
the worker containers, add the long-haul links, start the controller, start the switches, give
the reservations their classes, fill the neighbour tables, forward.

Addressing is deterministic (site i, worker k -> 10.i.0.k, MAC 02:00:00:00:ii:kk) so runs,
CSVs and controllers agree on who is who without asking the network.

Any stage may fail part-way; none undoes its own work. Removing what was started is the
caller's job, done the same way for every failure and interrupt (runtime.up runs cleanup.clean).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

from mininet.node import RemoteController

from twin.emulation import controller as ctl
from twin.emulation import liveness
from twin.emulation.compensation import compensate_floor
from twin.emulation.delayline import delayline_params, update_delayline
from twin.emulation.forwarding import install_static_arp, install_static_flows
from twin.emulation.links import apply_classes, apply_nic_classes
from twin.emulation.net import Twin, TwinSwitch
from twin.emulation.nodes import create_container
from twin.emulation.state import TwinState, WanInfo, WorkerInfo
from twin.emulation.tc import WorkerLinkClass, class_dscps
from twin.errors import TwinError
from twin.host import rundirs
from twin.host.engine import docker_client
from twin.host.images import build_worker, image_exists
from twin.host.processes import ns_prefix, parallel, run_argv
from twin.host.tcp import allow_congestion_control, worker_tcp_batch
from twin.plan.addressing import (
    switch_name,
    worker_intf_name,
    worker_ip,
    worker_mac,
    worker_name,
)
from twin.plan.dilation import LINUX_RTO_MIN_S
from twin.plan.reservations import admit_reservations, reserved_per_link
from twin.plan.routing import Reservation, link_classes
from twin.spec.topology import Site, Topology, WanLink

Progress = Callable[[str], None]


def build_twin(topo: Topology, topology_file: str, run_id: str, controller: str = "none",
               progress: Progress = lambda s: None) -> tuple[Twin, TwinState]:
    """Bring the topology up; on any failure the caller removes everything started so far.
    With the topology's ``delay_compensation`` the host's latency floor is measured and taken
    out of the long-haul links' delay stages (twin.emulation.compensation)."""
    reservations = check_controller(topo, controller, topology_file)
    images = check_images(topo, topology_file, progress)
    allow_congestion_control(topo.congestion_control)
    up = BringUp(topo, new_state(topo, topology_file, run_id, controller), progress)
    up.create_switches()
    up.wire_workers(up.start_workers(images))
    up.add_long_haul_links()
    if controller != "none":
        up.start_controller(reservations)
    up.start_switches()
    if controller == "detpath":  # its fast failover also sees cuts that leave the ports up
        liveness.enable_bfd(up.state)
    if reservations:
        up.isolate_on_wan(reservations)
        up.isolate_on_worker_links(reservations)
    up.tune_worker_tcp()  # the workers' addresses and routes exist once the network started
    install_static_arp(up.state)
    up.forward()
    if controller == "detpath":
        liveness.wait_bfd_up(liveness.wan_ports(up.state))
    if topo.delay_compensation and up.state.wan:
        progress(f"measuring the host's latency floor on {len(up.state.wan)} long-haul links")
        compensate_floor(up.state, progress)
    return up.net, up.state


# ---- before anything starts ----------------------------------------------------------------

def check_controller(topo: Topology, controller: str, topology_file: str = ""
                     ) -> list[Reservation]:
    """A controller the twin has, and (for detpath) every reservation given its codepoints and
    placed on a path with room: refused here, nothing has started yet. Returns the admitted
    reservations (none without detpath: only detpath isolates them)."""
    if controller == "none":
        return []
    if controller not in ctl.APPS:
        raise TwinError(f"unknown controller {controller!r} (use none, {', '.join(ctl.APPS)})")
    return admit_reservations(topo, topology_file) if controller == "detpath" else []


def check_images(topo: Topology, topology_file: str, progress: Progress) -> dict[str, str]:
    """Each site's worker image, present on this machine before any container starts (no
    registry is ever asked). The twin's own worker image is built here if its inputs changed."""
    client = docker_client()
    default_image = topo.image or build_worker(client, log=progress)
    images = {}
    for i, s in enumerate(topo.sites):
        ref = s.image or default_image
        if not image_exists(client, ref):
            raise TwinError(f"{topology_file}: sites[{i}:{s.name}].image: image {ref!r} is not on "
                            "this machine (no registry is used; build or import it first)")
        images[s.name] = ref
    return images


def new_state(topo: Topology, topology_file: str, run_id: str, controller: str) -> TwinState:
    """The run's record, with the mechanisms this machine offers (netem or delay lines, kernel or
    userspace OVS); the stages add what they create to it."""
    from twin.host.capabilities import link_mechanism, ovs_datapath
    return TwinState(run_id=run_id, topology=topo.name, topology_file=topology_file,
                     mechanism=link_mechanism(), datapath=ovs_datapath(), controller=controller,
                     scale=topo.scale.describe(), owner_pid=0, started=time.time(), mtu=topo.mtu,
                     dilation=topo.scale.time, congestion_control=topo.congestion_control,
                     site_delay_s={s.name: s.fabric.delay for s in topo.sites},
                     site_bps={s.name: topo.emulated_rate(s.fabric.rate) for s in topo.sites},
                     log_dir=str(rundirs.log_dir()))


# ---- what the stages ask for, computed from the topology (pure) -----------------------------

def mbit(bps: float) -> float:
    return bps / 1e6


def container_limits(site: Site) -> dict[str, Any]:
    """A site's CPU and memory limits per worker, as the Docker SDK takes them."""
    return {"nano_cpus": int(site.cpus * 1e9) if site.cpus else None, "mem_limit": site.memory}


def worker_link_params(topo: Topology, site: Site) -> dict[str, Any]:
    """Mininet's link keywords (bw in Mbit/s) for a worker's link to its site switch, as the host
    plays them (dilated: rate / K, delay x K)."""
    time_ = topo.scale.dilation
    delay = time_.host_s(site.fabric.delay)
    return {"bw": mbit(time_.host_bps(topo.emulated_rate(site.fabric.rate))), "mtu": topo.mtu,
            "delay": f"{delay * 1e6:.0f}us" if delay else None}


def long_haul_params(topo: Topology, link: WanLink) -> dict[str, Any]:
    """Mininet's TCLink keywords (bw in Mbit/s, loss in percent) plus the queue in bytes for a
    long-haul link, as the host plays them (dilated; the queue, in bytes, is one bandwidth-delay
    product either way). Its delay is always given, 0 us too: on a machine without netem every
    WAN link then has a delay line, whose serialization at the line rate is part of the link."""
    time_ = topo.scale.dilation
    return {"bw": mbit(time_.host_bps(topo.emulated_rate(link.rate))),
            "delay": f"{time_.host_s(topo.link_delay(link)) * 1e6:.0f}us", "mtu": topo.mtu,
            "jitter": f"{time_.host_s(link.jitter) * 1e6:.0f}us" if link.jitter else None,
            "loss": link.loss * 100 if link.loss else None,
            "queue_bytes": topo.link_queue_bytes(link)}


def worker_link_classes(reservations: list[Reservation], workers: list[WorkerInfo]
                        ) -> dict[str, list[WorkerLinkClass]]:
    """site -> the classes every worker link of the site carries: one per reservation with the
    site at one end, whose peers are the workers at its other end."""
    out: dict[str, list[WorkerLinkClass]] = {w.site: [] for w in workers}
    for i, r in enumerate(reservations):
        for here, there in ((r.src, r.dst), (r.dst, r.src)):
            out.setdefault(here, []).append(WorkerLinkClass(
                index=i, dscp=r.dscp, probe_dscp=r.probe_dscp, rate_bps=r.rate_bps,
                tcp_ports=tuple(r.tcp_ports),
                udp_ports=tuple(r.udp_ports + r.replicated_udp_ports),
                peers=tuple(w.ip for w in workers if w.site == there)))
    return out


def controller_ready_line(controller: str, info: dict[str, Any]) -> str:
    """The progress line for a controller that has programmed every switch (its ready file)."""
    return (f"controller {controller}: {info.get('switches')} switches programmed"
            + (f", {info['flows']} flows" if "flows" in info else "")
            + (f", wiring of {info['wiring_verified']}/{info['wan_ports']} WAN ports "
               "verified by LLDP" if "wan_ports" in info else ""))


# ---- the stages that change the machine ------------------------------------------------------

class BringUp:
    """What the stages of one bring-up share: the topology, the Mininet net being built, the state
    being recorded (each stage adds what it made), and where progress lines go."""

    def __init__(self, topo: Topology, state: TwinState, progress: Progress) -> None:
        self.topo, self.state, self.progress = topo, state, progress
        self.net = Twin(run_id=state.run_id, mechanism=state.mechanism, datapath=state.datapath)
        self.site_index = {s.name: i for i, s in enumerate(topo.sites, 1)}
        self.switches: dict[str, TwinSwitch] = {}  # site -> its switch
        self.controller_model: Optional[Path] = None

    def create_switches(self) -> None:
        """One OVS bridge per site, named by the site's index (the controller derives its dpid
        from the name). Created in OVS only by start_switches, in one transaction."""
        self.progress(f"creating {len(self.topo.sites)} switches")
        for s in self.topo.sites:
            name = switch_name(self.site_index[s.name])
            self.switches[s.name] = self.net.addSwitch(name)
            self.state.switches[name] = s.name

    def start_workers(self, images: dict[str, str]) -> list[Any]:
        """The worker containers, eight at a time, in the order of topo.workers(); none has a
        network yet."""
        jobs = self.topo.workers()
        self.progress(f"starting {len(jobs)} worker containers")
        return parallel(lambda job: create_container(
            worker_name(job[0].name, job[1]), images[job[0].name], self.state.run_id,
            labels={f"{rundirs.LABEL}.site": job[0].name}, **container_limits(job[0])), jobs)

    def wire_workers(self, containers: list[Any]) -> None:
        """Each container as a Mininet host on a shaped link to its site switch, with its fixed
        address; recorded with the switch port it landed on."""
        self.progress("wiring workers to their site switches")
        for (s, k), container in zip(self.topo.workers(), containers):
            i = self.site_index[s.name]
            name = worker_name(s.name, k)
            host = self.net.addDocker(name, container=container, ip=f"{worker_ip(i, k)}/8",
                                      mac=worker_mac(i, k))
            sw = self.switches[s.name]
            link = self.net.addLink(host, sw, **worker_link_params(self.topo, s))
            self.state.workers.append(WorkerInfo(
                name=name, site=s.name, index=k, ip=worker_ip(i, k), mac=worker_mac(i, k),
                switch=sw.name, port=sw.ports[link.intf2], port_intf=link.intf2.name,
                container=container.id, pid=int(container.attrs["State"]["Pid"])))

    def tune_worker_tcp(self) -> None:
        """Every worker's TCP congestion control set explicitly (the machine's default must not
        leak into results), and under time dilation its route's minimum RTO scaled with the
        fabric (the one TCP timer Linux lets a route set; see twin.plan.dilation)."""
        state, time_ = self.state, self.state.time

        def one(w: WorkerInfo) -> None:
            sysctl, routes = worker_tcp_batch(worker_intf_name(w.site, w.index), w.ip,
                                              state.congestion_control, time_.rto_min_s,
                                              LINUX_RTO_MIN_S)
            run_argv(ns_prefix(w.pid) + sysctl, what=f"TCP congestion control in {w.name}")
            if routes:
                run_argv(ns_prefix(w.pid) + ["ip", "-batch", "-"], stdin=routes,
                         what=f"TCP minimum RTO in {w.name}")
        parallel(one, state.workers)

    def add_long_haul_links(self) -> None:
        """The WAN links between site switches: rate, queue, and delay/jitter/loss by netem or a
        delay line (see links.LongHaulLink); recorded with both ports and the delay line."""
        topo, state = self.topo, self.state
        self.progress(f"shaping {len(topo.links)} long-haul links ({state.mechanism})")
        for link in topo.links:
            sa, sb = self.switches[link.a], self.switches[link.b]
            ml = self.net.addLink(sa, sb, **long_haul_params(topo, link))
            state.wan.append(WanInfo(
                a=link.a, b=link.b, switch_a=sa.name, switch_b=sb.name,
                port_a=sa.ports[ml.intf1], port_b=sb.ports[ml.intf2],
                intf_a=ml.intf1.name, intf_b=ml.intf2.name, km=topo.link_distance_km(link),
                delay_s=topo.link_delay(link), jitter_s=link.jitter, loss=link.loss,
                rate_bps=link.rate, emulated_bps=topo.emulated_rate(link.rate),
                queue_bytes=topo.link_queue_bytes(link), delayline=ml.delayline,
                site_a_index=self.site_index[link.a], site_b_index=self.site_index[link.b]))

    def start_controller(self, reservations: list[Reservation]) -> None:
        """The controller process, told the complete wiring, and listening before any switch
        starts, so a switch's first connection finds it; trusted only later, in forward()."""
        controller = self.state.controller
        self.controller_model = ctl.write_description(self.state, reservations)
        self.progress(f"starting controller {controller} (os-ken) on "
                      f"127.0.0.1:{ctl.CONTROLLER_PORT}")
        self.state.controller_pid = ctl.start(controller, self.controller_model).pid
        self.net.addController(RemoteController("c0", ip="127.0.0.1", port=ctl.CONTROLLER_PORT))

    def start_switches(self) -> None:
        """The bridges and their ports in OVS (the shaping is put back, see Twin.start), then a
        wait until userspace OVS has every port up: nothing may be sent before."""
        self.progress("starting switches")
        self.net.start()
        self.net.wait_ports_up()

    def isolate_on_wan(self, reservations: list[Reservation]) -> None:
        """detpath's classes on both egress ports of every WAN link: each reservation whose
        primary or backup path crosses it in classes of its own (its probes, its booked rate),
        BFD's and best effort's; and the delay lines told to serialize those classes apart."""
        topo, state = self.topo, self.state
        self.progress(f"isolating {len(reservations)} reservation(s) in HTB classes on WAN "
                      "egress ports")
        load = reserved_per_link(reservations)
        time_ = state.time
        for w in state.wan:
            classes = link_classes(reservations, w.a, w.b)
            host_classes = [replace(c, rate_bps=time_.host_bps(c.rate_bps),
                                    booked_bps=time_.host_bps(c.booked_bps)) for c in classes]
            # where netem carries the delay, it is the queue of every class (no delay line)
            netem = state.mechanism == "netem" and not w.delayline
            stage = w.shaping(topo.mtu, time_) if netem else None
            for intf in (w.intf_a, w.intf_b):
                apply_classes(intf, time_.host_bps(w.emulated_bps), host_classes, w.queue_bytes,
                              rtt_s=time_.host_s(2 * w.delay_s), mtu=topo.mtu, delay_stage=stage)
            w.reserved_bps = load.get(frozenset((w.a, w.b)), 0.0)
            w.class_dscps = list(class_dscps(classes))
            if w.delayline:  # its classes are serialized apart from now on
                update_delayline(w.delayline, delayline_params(w.shaping(topo.mtu, time_)))

    def isolate_on_worker_links(self, reservations: list[Reservation]) -> None:
        """Each reservation's classes on the links of the workers at its two sites, on the NIC
        and on the switch port facing it, so the job keeps its rate on the first and last hop
        too (see tc.nic_class_commands). Rates as the host plays them (dilated)."""
        topo, time_ = self.topo, self.state.time
        self.progress("giving the reservations' classes to every worker link at their sites "
                      "(NIC and switch port)")
        classes = worker_link_classes(reservations, self.state.workers)
        rate = {s.name: time_.host_bps(topo.emulated_rate(s.fabric.rate)) for s in topo.sites}

        def nic(w: WorkerInfo) -> None:
            mine = [replace(c, rate_bps=time_.host_bps(c.rate_bps)) for c in classes[w.site]]
            if not mine:  # no reservation at this site: its links stay as they were shaped
                return
            apply_nic_classes(worker_intf_name(w.site, w.index), w.pid, rate[w.site], mine,
                              topo.mtu)
            apply_nic_classes(w.port_intf, None, rate[w.site], mine, topo.mtu,
                              toward_worker=True)
        parallel(nic, self.state.workers)

    def forward(self) -> None:
        """Without a controller, static shortest-delay flows; with one, wait until it has
        programmed every switch (and, for apps that check it, verified the wiring by LLDP)."""
        controller = self.state.controller
        if controller == "none":
            self.progress("installing static shortest-delay forwarding")
            install_static_flows(self.topo, self.state)
            return
        assert self.controller_model is not None, "start_controller runs before forward"
        info = ctl.wait_ready(self.controller_model, self.state.controller_pid)
        self.progress(controller_ready_line(controller, info))

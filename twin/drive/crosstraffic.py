"""Cross traffic and probes between workers, started and stopped by the twin, results kept.

iperf3 for TCP/UDP channels, interference and calibration's goodput: the one place the twin runs
it, the host's binary inside the workers' network namespaces (the worker image has only
python3), with its JSON result. ``traffic.probe`` inside the containers for one-way delay.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from typing import Optional

from traffic.probe import wait_listening as wait_probe_listening
from twin.drive.workerexec import WorkerProcess, stop
from twin.emulation.state import WorkerInfo
from twin.host.processes import ns_prefix
from twin.units import udp_payload_bytes

SMALL_DATAGRAM = 1400  # UDP payload that fits a 1,500-byte MTU with room for tunnels


def parse_iperf3(text: str) -> tuple[float, int]:
    """(received bit/s, retransmits) from iperf3 -J output."""
    data = json.loads(text)
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    end = data["end"]
    return float(end["sum_received"]["bits_per_second"]), int(end["sum_sent"].get("retransmits", 0))


def client_argv(dst_ip: str, port: int, seconds: float, proto: str = "tcp", rate_bps: float = 0,
                datagram: int = SMALL_DATAGRAM, streams: int = 1, omit: int = 0) -> list[str]:
    """The iperf3 client's command line: ``seconds`` measured after ``omit`` seconds left out
    (TCP's slow start), ``streams`` parallel connections, UDP in ``datagram``-byte payloads."""
    argv = ["iperf3", "-c", dst_ip, "-p", str(port), "-t", str(seconds), "-J"]
    if proto == "udp":
        argv += ["-u", "-l", str(datagram)]
    if rate_bps:
        argv += ["-b", str(int(rate_bps))]
    if streams != 1:
        argv += ["-P", str(streams)]
    if omit:
        argv += ["-O", str(omit)]
    return argv


@dataclass
class Flow:
    """One iperf3 client/server pair; ``result()`` waits and returns (bit/s received, retransmits)."""

    src: WorkerInfo
    dst: WorkerInfo
    port: int
    rate_bps: float
    proto: str
    seconds: float
    server: subprocess.Popen = field(repr=False)
    client: subprocess.Popen = field(repr=False)

    def result(self) -> tuple[float, int]:
        try:
            out, err = self.client.communicate(timeout=self.seconds + 30)
        finally:
            self.stop()
        try:
            return parse_iperf3(out)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise RuntimeError(f"iperf3 {self.src.name}->{self.dst.name}:{self.port}: {exc}") from None

    def running(self) -> bool:
        return self.client.poll() is None

    def stop(self) -> None:
        for p in (self.client, self.server):
            if p.poll() is None:
                p.kill()
                p.wait()


def start_flow(src: WorkerInfo, dst: WorkerInfo, port: int, rate_bps: float = 0,
               proto: str = "tcp", seconds: float = 5.0, delay_start: float = 0.0,
               datagram: int = SMALL_DATAGRAM, streams: int = 1, omit: int = 0) -> Flow:
    """An iperf3 server in ``dst``, once it listens a client in ``src``; see client_argv."""
    server = subprocess.Popen(ns_prefix(dst.pid) + ["iperf3", "-s", "-1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(dst, port)
    except BaseException:
        server.kill()
        server.wait()
        raise
    if delay_start:
        time.sleep(delay_start)
    client = subprocess.Popen(
        ns_prefix(src.pid) + client_argv(dst.ip, port, seconds, proto, rate_bps, datagram,
                                         streams, omit),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return Flow(src, dst, port, rate_bps, proto, seconds, server, client)


def start_interference(src: WorkerInfo, dst: WorkerInfo, port: int, rate_bps: float,
                       seconds: float, mtu: int) -> Flow:
    """Unresponsive UDP at ``rate_bps`` in full frames of the fabric's MTU, like the bulk traffic
    of an AI fabric (and the twin's own collectives). Frames, not bits, cost the userspace switch
    CPU: the same rate in 1,400-byte datagrams is 6x the packets (see determinism's small-frame
    phase for what that does to delay)."""
    return start_flow(src, dst, port, rate_bps, "udp", seconds, datagram=udp_payload_bytes(mtu))


def wait_listening(dst: WorkerInfo, port: int, timeout: float = 10.0) -> None:
    """Until a TCP listener is up on ``port`` in the worker (a loaded machine starts servers late,
    and a client that finds no server would silently run no traffic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(ns_prefix(dst.pid) + ["ss", "-ltnH", f"sport = :{port}"],
                             capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"iperf3 server on {dst.name}:{port} did not start within {timeout:.0f} s")


@dataclass
class Probe:
    """A ``traffic.probe`` receiver in one worker's container and its sender in another's."""

    receiver: WorkerProcess
    sender: Optional[WorkerProcess] = None

    def result(self, timeout: float = 60) -> dict:
        """The receiver's metrics once both have ended; neither is left running."""
        try:
            if self.sender:
                _, err = self.sender.communicate(timeout=timeout)
                if self.sender.returncode:
                    raise RuntimeError(f"probe sender exited with status "
                                       f"{self.sender.returncode}: {err.strip()[-200:]}")
            out, err = self.receiver.communicate(timeout=timeout)
        finally:
            stop([p for p in (self.sender, self.receiver) if p])
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError(f"probe receiver gave no result: {err.strip()[-200:]}")
        return json.loads(lines[-1])


def start_probe(src: WorkerInfo, dst: WorkerInfo, port: int, pps: float, count: int,
                dscp: int = 0, size: Optional[int] = None) -> Probe:
    """``count`` probes at ``pps`` from ``src`` to ``dst`` with DSCP ``dscp``, sent once the
    receiver listens; ``size``: UDP payload bytes (the probe's own default without it)."""
    duration = count / pps + 5
    receiver = WorkerProcess(dst.container, [
        "python3", "-m", "traffic.probe", "recv", "--port", str(port), "--duration", str(duration),
        "--expect", str(count)])
    try:
        wait_probe_listening(receiver)
    except BaseException:
        stop([receiver])
        raise
    sender = WorkerProcess(src.container, [
        "python3", "-m", "traffic.probe", "send", "--dst", dst.ip, "--port", str(port), "--pps",
        str(pps), "--count", str(count), "--dscp", str(dscp)]
        + (["--size", str(size)] if size else []))
    return Probe(receiver, sender)

"""The Python API on netem, as Mininet's TCLink: a link with delay and jitter but no rate is a
netem at the root of both ends, which reorders (each frame's own random delay decides when it
leaves); a live change keeps the link's queue limit."""

from __future__ import annotations

import json
import re
import threading
import time

from tests.integration.stock_kernel.conftest import netem_delays
from twin.emulation.net import Twin


def probe(rx, tx, rx_ip: str, pps: int, count: int, port: int) -> dict:
    box: dict = {}

    def recv() -> None:
        box["rc"], box["out"] = rx.dexec(["python3", "-m", "traffic.probe", "recv", "--port",
                                          str(port), "--duration", str(count / pps + 10),
                                          "--expect", str(count)])
    t = threading.Thread(target=recv)
    t.start()
    time.sleep(3.0)  # the receiver's python starts slowly on an emulated CPU
    rc, out = tx.dexec(["python3", "-m", "traffic.probe", "send", "--dst", rx_ip, "--port",
                        str(port), "--pps", str(pps), "--count", str(count)])
    assert rc == 0, out
    t.join()
    assert box["rc"] == 0, box["out"]
    return json.loads(box["out"].strip().splitlines()[-1])  # after its 'listening' line


def limit(line: str) -> int:
    m = re.search(r"limit (\d+)", line)
    assert m, f"no queue limit in {line!r}"
    return int(m.group(1))


def test_netem_without_a_rate_reorders_under_jitter_and_a_live_change_keeps_its_queue(
        clean_machine):
    with Twin() as net:
        d1 = net.addDocker("d1", ip="10.0.0.251/24")
        d2 = net.addDocker("d2", ip="10.0.0.252/24")
        s1, s2 = net.addSwitch("tw91"), net.addSwitch("tw92")
        net.addLink(d1, s1, bw=100)
        net.addLink(d2, s2, bw=100)
        wan = net.addLink(s1, s2, delay="20ms", jitter="10ms", queue_bytes=3_000_000)
        net.start()
        for sw in (s1, s2):
            sw.cmd("ovs-ofctl", "-O", "OpenFlow13", "add-flow", sw.name, "actions=NORMAL")
        leaf = netem_delays(wan.intf1.name)
        assert list(leaf) and next(iter(leaf.values()))["parent"] == "root", leaf
        handle, netem = next(iter(leaf.items()))
        assert abs(netem["jitter_s"] - 0.010) < 1e-6 and "rate" not in netem["line"]
        queue = limit(netem["line"])
        assert queue == 3_000_000 // 1514 + 1

        jittered = probe(d2, d1, "10.0.0.252", pps=500, count=1000, port=7201)
        assert jittered["received"] >= 990, jittered
        # 2 ms between frames, delays spread by 10 ms: most neighbours swap places
        assert jittered["reordered"] > 50, jittered

        wan.set_impairments(delay_s=0.020, jitter_s=0.0, loss=0.0)
        after = netem_delays(wan.intf1.name)[handle]
        assert after["jitter_s"] == 0.0 and abs(after["delay_s"] - 0.020) < 1e-6
        assert limit(after["line"]) == queue, f"the live change reset the queue: {after['line']}"
        steady = probe(d2, d1, "10.0.0.252", pps=500, count=1000, port=7202)
        # Without jitter netem keeps its order; the emulated guest's vCPUs still swap a few frames
    # (frames leaving on different CPUs enter different per-CPU backlogs: 7 of 1,000 were seen
    # on a link without netem's jitter), hundreds fewer than under jitter
    assert steady["received"] >= 990 and steady["reordered"] <= 10, steady
    assert steady["reordered"] * 5 < jittered["reordered"], (steady, jittered)

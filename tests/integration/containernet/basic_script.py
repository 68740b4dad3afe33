# ruff: noqa: I001  (the imports in the order a Containernet script has them)
"""A Containernet script of the simplest kind: two containers, two switches, a controller, a
shaped link between the switches. Only the first import differs from the same script on
Containernet; ``Docker`` and ``OVSSwitch`` come from ``mininet.node`` as Containernet scripts
import them (the first import puts the twin's Docker there). Prints what a user looks at: ping
loss, RTTs, iperf, then stops.

  python tests/integration/containernet/basic_script.py IMAGE
"""

import sys

from twin.containernet import Containernet  # on Containernet: from mininet.net import Containernet
from mininet.node import Controller, Docker, OVSSwitch
from mininet.link import TCLink
from mininet.cli import CLI
from mininet.log import info, setLogLevel

setLogLevel("info")
image = sys.argv[1] if len(sys.argv) > 1 else "twin-worker:latest"

net = Containernet(controller=Controller)
info("*** Adding controller\n")
net.addController("c0")
info("*** Adding docker containers\n")
d1 = net.addDocker("d1", ip="10.0.0.251", dimage=image)
d2 = net.addHost("d2", cls=Docker, ip="10.0.0.252", dimage=image)
info("*** Adding switches\n")
s1 = net.addSwitch("s1", cls=OVSSwitch)
s2 = net.addSwitch("s2")
info("*** Creating links\n")
net.addLink(d1, s1)
net.addLink(s1, s2, cls=TCLink, delay="100ms", bw=1)
net.addLink(s2, d2)
info("*** Starting network\n")
net.start()
info("*** Testing connectivity\n")
loss = net.ping([d1, d2])
print(f"RESULT loss={loss}")
print("RESULT containers", d1.container.name, d2.container.name)
print("RESULT ping", d1.cmd("ping -n -c 5 -i 0.3 10.0.0.252").strip().splitlines()[-1])
print("RESULT iperf", net.iperf([d1, d2], seconds=5))
info("*** Running CLI\n")
CLI(net)
info("*** Stopping network\n")
net.stop()

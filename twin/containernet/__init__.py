"""Containernet's API on the twin. A Containernet script runs with one changed line::

    from twin.containernet import Containernet      # was: from mininet.net import Containernet

Everything else stays: ``mininet.node`` (Controller, OVSController, RemoteController, OVSSwitch,
...), ``mininet.link`` (TCLink, Link), ``mininet.cli``, ``mininet.log``. Importing this package
also makes its Docker class ``mininet.node.Docker``, where Containernet scripts import it from
(vanilla Mininet has none), so that import must come after this one. What differs:
docs/containernet.md.
"""

from twin.containernet.controller import LearningController
from twin.containernet.net import Containernet
from twin.containernet.node import Docker

__all__ = ["Containernet", "Docker", "LearningController"]

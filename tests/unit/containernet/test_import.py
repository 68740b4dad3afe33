"""A Containernet script's imports, in a fresh interpreter each (the registration is what
importing the package does, so it is seen only where nothing imported it yet)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[3]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_containernet_imports_run_once_the_net_import_comes_first():
    proc = run("from twin.containernet import Containernet\n"
               "from mininet.node import Controller, Docker, OVSSwitch\n"
               "from mininet.link import TCLink\n"
               "import twin.containernet\n"
               "assert Docker is twin.containernet.Docker, Docker\n"
               "print('ok')\n")
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr


def test_any_import_of_the_package_registers_it():
    proc = run("import twin.containernet.net\n"
               "import mininet.node\n"
               "from twin.containernet.node import Docker\n"
               "assert mininet.node.Docker is Docker\n")
    assert proc.returncode == 0, proc.stderr


def test_the_other_order_is_vanilla_mininets_import_error():
    """Why the docs ask for the net import first: before it, mininet.node has no Docker."""
    proc = run("from mininet.node import Docker\n")
    assert proc.returncode != 0 and "cannot import name 'Docker' from 'mininet.node'" in proc.stderr


def test_a_docker_already_in_mininet_node_is_left_alone():
    proc = run("import mininet.node\n"
               "class Docker: pass\n"
               "mininet.node.Docker = Docker\n"
               "import twin.containernet\n"
               "assert mininet.node.Docker is Docker\n")
    assert proc.returncode == 0, proc.stderr

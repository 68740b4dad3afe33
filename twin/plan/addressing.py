"""Names and addresses of everything the twin creates, derived from the topology alone.

Addressing is deterministic (site i, worker k -> 10.i.0.k, MAC 02:00:00:00:ii:kk) so runs, CSVs
and controllers agree on who is who without asking the network.
"""

from __future__ import annotations

from twin.host import rundirs


def worker_name(site: str, index: int) -> str:
    return f"{site}{index}"


def worker_intf_name(site: str, index: int) -> str:
    return f"{worker_name(site, index)}-eth0"


def switch_name(site_index: int) -> str:
    return f"{rundirs.prefix()}{site_index}"


def worker_ip(site_index: int, k: int) -> str:
    return f"10.{site_index}.{k // 250}.{k % 250}"


def worker_mac(site_index: int, k: int) -> str:
    return f"02:00:00:00:{site_index:02x}:{k:02x}"


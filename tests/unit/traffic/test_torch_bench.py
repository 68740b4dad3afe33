"""The parts of the gloo rank program that need no torch: buffer sizes and the fabric interface."""

import pytest

from traffic.torch_bench import element_count, interface_with


def test_the_interface_holding_an_address_is_found_by_its_address():
    assert interface_with("127.0.0.1") == "lo"
    with pytest.raises(ValueError, match="192.0.2.77"):
        interface_with("192.0.2.77")


@pytest.mark.parametrize("op", ["reducescatter", "allgather", "alltoall"])
def test_split_collectives_get_a_count_divisible_by_the_ranks(op):
    assert element_count(op, 1_000_001, 4) % 4 == 0
    assert element_count(op, 4, 4) == 4  # never fewer elements than ranks


def test_allreduce_keeps_every_element():
    assert element_count("allreduce", 1_000_003, 4) == 250_000
    assert element_count("allreduce", 4 * 1024**2, 3) == 1024**2

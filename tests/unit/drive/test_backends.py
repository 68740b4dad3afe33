"""Which worker-side program runs a collective, and what gloo refuses before any rank starts."""

import pytest

from twin.drive.benchmark import backend_module
from twin.errors import TwinError


def test_each_backend_has_its_rank_program():
    assert backend_module("twin", "allreduce", "hd", 4) == "traffic.bench"
    assert backend_module("gloo", "allreduce", "ring", 1) == "traffic.torch_bench"
    assert backend_module("gloo", "broadcast", "hd", 1) == "traffic.torch_bench"  # algo is all-reduce's


@pytest.mark.parametrize("algo, conns, word", [("hd", 1, "--algo ring"), ("ring", 4, "--conns 1")])
def test_gloo_refuses_what_it_cannot_do_in_one_line(algo, conns, word):
    with pytest.raises(TwinError) as exc:
        backend_module("gloo", "allreduce", algo, conns)
    assert word in str(exc.value) and "\n" not in str(exc.value)


def test_an_unknown_backend_names_the_known_ones():
    with pytest.raises(TwinError, match="twin, gloo"):
        backend_module("nccl", "allreduce", "ring", 1)

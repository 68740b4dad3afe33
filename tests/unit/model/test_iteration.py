"""A training schedule in the model's terms, and the one list of all-reduce algorithms."""

import pytest

from traffic.collectives import ALLREDUCE_ALGOS
from twin.model import costs, iteration
from twin.model.costs import allreduce_time
from twin.model.fabric import Fabric
from twin.model.iteration import Iteration, best_single_site, predict
from twin.spec.schedule import Schedule


def test_a_schedule_becomes_the_models_iteration_with_its_overlap():
    s = Schedule(forward="200ms", backward="400ms", optimizer="50ms", buckets=["1G", "1G"])
    it = Iteration.of(s.scaled(1 / 4000).model_copy(update={"overlap": False}))
    assert it == Iteration(0.2, 0.4, 0.05, (2**30 // 4000, 2**30 // 4000), False)
    assert Iteration.of(s).overlap is True and it.compute == pytest.approx(s.compute)


def test_overlap_hides_communication_behind_backward():
    f = Fabric(sites=2, per_site=2, lan_bps=4e8, wan_bps=1e8, alpha_lan=2e-4, alpha_wan=7e-3)
    s = Schedule(forward=0.2, backward=0.4, buckets=[2_000_000] * 4)
    on = predict("ring", f, Iteration.of(s))
    off = predict("ring", f, Iteration.of(s.model_copy(update={"overlap": False})))
    assert on.iteration < off.iteration and on.communication == pytest.approx(off.communication)


@pytest.mark.parametrize("algo", ALLREDUCE_ALGOS)
def test_every_algorithm_the_workers_run_has_a_cost(algo):
    f = Fabric(sites=2, per_site=2, lan_bps=4e8, wan_bps=1e8, alpha_lan=2e-4, alpha_wan=7e-3)
    assert allreduce_time(algo, f, 1e6) > 0


def test_the_model_uses_the_workers_list_of_algorithms():
    assert costs.ALLREDUCE_ALGOS is ALLREDUCE_ALGOS and iteration.ALLREDUCE_ALGOS is ALLREDUCE_ALGOS
    f = Fabric(sites=2, per_site=4, lan_bps=4e8, wan_bps=1e8, alpha_lan=2e-4, alpha_wan=7e-3)
    best, _ = best_single_site(f, Iteration(0.1, 0.2, 0.0, (1e6,)))
    assert best in ALLREDUCE_ALGOS
    with pytest.raises(ValueError, match="use ring, hd, tree, hier"):
        allreduce_time("warp", f, 1e6)

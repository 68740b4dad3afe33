"""What a Containernet script's Mininet classes and link keywords become in the twin, decided
before anything starts."""

import pytest
from mininet.node import Controller, DefaultController, OVSController, RemoteController

from twin.containernet.controller import description
from twin.containernet.net import check_link_keywords, twin_controller
from twin.errors import TwinError


def test_stock_controllers_become_the_learning_switch_and_others_stay():
    from twin.containernet import LearningController
    for stock in (Controller, OVSController, DefaultController):
        assert twin_controller(stock) is LearningController
    assert twin_controller(RemoteController) is RemoteController
    assert twin_controller(None) is None
    assert twin_controller([Controller, RemoteController]) == [LearningController, RemoteController]


def test_link_keywords_the_twin_shapes_pass():
    check_link_keywords("addLink(s1, s2)", {"bw": 1, "delay": "100ms", "jitter": "1ms",
                                            "loss": 1, "max_queue_size": 100, "use_htb": True,
                                            "params1": {"ip": "10.0.0.1/8", "bw": 5},
                                            "addr1": "00:00:00:00:00:01", "txo": False},
                        "delayline")


@pytest.mark.parametrize("params, message", [
    ({"enable_red": True}, r"^addLink\(s1, s2\): enable_red=True is not emulated"),
    ({"use_tbf": True}, r"use_tbf=True is not emulated"),
    ({"speedup": 10}, r"speedup=10 is not emulated"),
    ({"txo": True}, r"txo=True is not emulated"),
    ({"dealy": "1ms"}, r"^addLink\(s1, s2\): unknown link keyword dealy='1ms'$"),
    ({"params2": {"fast": True}}, r"unknown link keyword params2: fast=True"),
    ({"params1": {"enable_ecn": True}}, r"params1: enable_ecn=True is not emulated"),
])
def test_link_keywords_without_a_counterpart_are_refused(params, message):
    with pytest.raises(TwinError, match=message):
        check_link_keywords("addLink(s1, s2)", params, "netem")


def test_one_end_delay_needs_netem():
    one_end = {"params1": {"delay": "5ms"}}
    check_link_keywords("addLink(s1, s2)", one_end, "netem")
    with pytest.raises(TwinError, match=r"params1: delay, jitter and loss apply to the whole link"):
        check_link_keywords("addLink(s1, s2)", one_end, "delayline")


def test_description_is_what_the_controller_reads():
    from controllers.description import FabricModel
    from twin.plan.graph import fabric_graph
    from twin.plan.routing import spanning_tree_ports
    links = [{"a": a, "b": b, "switch_a": a, "switch_b": b, "port_a": pa, "port_b": pb,
              "delay_s": d, "emulated_bps": 1e6}
             for a, b, pa, pb, d in (("s1", "s2", 2, 1, 0.01), ("s2", "s3", 2, 1, 0.01),
                                     ("s1", "s3", 3, 2, 0.05))]
    model = FabricModel(**description({"s1": 1, "s2": 2, "s3": 3}, links, ready_file="r"))
    assert model.switch_by_dpid(2) == ("s2", {"dpid": 2, "site": "s2"})
    tree = spanning_tree_ports(fabric_graph(model.wan))
    assert tree == {"s1": {2}, "s2": {1, 2}, "s3": {1}}  # the slow s1-s3 link is off the tree


@pytest.mark.parametrize("params, mechanism, message", [
    ({"max_queue_size": 100}, "delayline", r"^addLink\(s1, s2\): max_queue_size=100 bounds no "
                                           r"queue without bw: .*delay line"),
    ({"delay": "10ms", "max_queue_size": 100}, "delayline", r"max_queue_size=100 bounds no queue"),
    ({"max_queue_size": 100}, "netem", r"max_queue_size=100 bounds no queue without bw: the queue "
                                       r"forms in front of the link's rate$"),
    ({"max_queue_size": 100, "params1": {"bw": 5}}, "netem", r"max_queue_size=100 bounds no queue"),
    ({"bw": 5, "max_queue_size": 100, "queue_bytes": 10**6}, "netem", r"both given; give one$"),
])
def test_a_queue_limit_must_bound_a_queue(params, mechanism, message):
    with pytest.raises(TwinError, match=message):
        check_link_keywords("addLink(s1, s2)", params, mechanism)


def test_a_queue_limit_with_a_rate_or_netems_delay_passes():
    check_link_keywords("addLink(s1, s2)", {"bw": 5, "max_queue_size": 100}, "delayline")
    check_link_keywords("addLink(s1, s2)", {"max_queue_size": 100, "params1": {"bw": 5},
                                            "params2": {"bw": 1}}, "delayline")
    check_link_keywords("addLink(s1, s2)", {"delay": "10ms", "max_queue_size": 100}, "netem")

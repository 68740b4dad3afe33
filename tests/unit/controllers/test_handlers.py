"""What the controllers' event handlers are registered for (os-ken drops an event whose
switch is in a state the handler was not registered for)."""

import pytest
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER

from controllers.baseline import Baseline
from controllers.detpath import DetPath


@pytest.mark.parametrize("app", [Baseline, DetPath])
def test_a_barrier_reply_counts_before_and_after_the_switch_reaches_main_dispatcher(app):
    """The barrier is sent from the features handler; its reply may come back while os-ken
    still has the switch in CONFIG_DISPATCHER."""
    caller = app.barrier_reply.callers[ofp_event.EventOFPBarrierReply]
    assert set(caller.dispatchers) == {CONFIG_DISPATCHER, MAIN_DISPATCHER}

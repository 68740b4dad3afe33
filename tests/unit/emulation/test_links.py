"""What a TCLink end's keywords become: the Shaping its tc commands are built from."""

from twin.emulation.links import intf_shaping
from twin.emulation.tc import shaping_commands


def leaf(shaping, mechanism: str) -> str:
    return " ".join(shaping_commands("s1-eth2", shaping, mechanism)[-1])


def test_max_queue_size_is_packets_of_a_full_frame():
    s = intf_shaping(bw=10, delay="50ms", max_queue_size=200)
    assert (s.rate_bps, s.delay_s) == (10e6, 0.05)
    assert s.queue_bytes == 200 * 1514 and s.queue_packets == 200
    assert intf_shaping(bw=10, max_queue_size=200, mtu=9000).queue_bytes == 200 * 9014


def test_max_queue_size_is_the_queue_limit_on_either_mechanism():
    """The delay line's ends queue in a byte FIFO behind the rate; netem's limit is in packets
    and is taken as given (Mininet's meaning: the delayed packets count too), not raised to the
    1000 a computed queue never goes below."""
    s = intf_shaping(bw=10, delay="50ms", max_queue_size=200)
    assert leaf(intf_shaping(bw=10, max_queue_size=200, shape_delay=False),
                "delayline").endswith("parent 1:10 handle 10: bfifo limit 302800")
    assert leaf(s, "netem").endswith("rate 10000000bit limit 200")
    assert leaf(intf_shaping(delay="50ms", max_queue_size=20), "netem").endswith("limit 20")


def test_queue_bytes_is_the_twins_byte_limit():
    s = intf_shaping(bw=10, delay="50ms", queue_bytes=3_000_000)
    assert s.queue_bytes == 3_000_000 and s.queue_packets is None
    assert leaf(s, "netem").endswith("limit 1982")  # packets, never below netem's 1000
    assert intf_shaping(bw=10).queue_bytes is None  # tc's own default: 64 frames (tc.py)

"""iperf3's command lines as the twin runs it: channels, interference, calibration."""

from __future__ import annotations

from twin.drive.crosstraffic import SMALL_DATAGRAM, client_argv


def test_a_tcp_channel_at_a_rate():
    assert client_argv("10.2.0.1", 5300, 6, rate_bps=12_500_000.7) == [
        "iperf3", "-c", "10.2.0.1", "-p", "5300", "-t", "6", "-J", "-b", "12500000"]


def test_udp_in_small_datagrams_by_default():
    argv = client_argv("10.2.0.1", 5302, 5.0, proto="udp", rate_bps=1e8)
    assert argv[argv.index("-u") + 1:argv.index("-u") + 3] == ["-l", str(SMALL_DATAGRAM)]
    assert argv[-2:] == ["-b", "100000000"]


def test_calibration_leaves_out_the_first_second_and_sends_as_fast_as_tcp_goes():
    argv = client_argv("10.2.0.2", 5399, 5.0, omit=1)
    assert argv == ["iperf3", "-c", "10.2.0.2", "-p", "5399", "-t", "5.0", "-J", "-O", "1"]
    assert "-b" not in argv and "-u" not in argv


def test_parallel_streams_only_when_asked():
    assert "-P" not in client_argv("10.2.0.2", 5399, 5.0)
    argv = client_argv("10.2.0.2", 5399, 5.0, streams=4)
    assert argv[argv.index("-P") + 1] == "4"

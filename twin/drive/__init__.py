"""Traffic on a running twin: ranks of collectives and training replays started in the workers,
iperf3 cross traffic and probes."""

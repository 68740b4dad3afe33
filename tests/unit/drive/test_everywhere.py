"""torchrun's rendezvous environment for one process per worker, and what a failed rank shows."""

from twin.drive.everywhere import RankOutcome, rendezvous_env
from twin.emulation.state import WorkerInfo


def worker(name: str, ip: str) -> WorkerInfo:
    return WorkerInfo(name=name, site=name[:-1], index=1, ip=ip, mac="02:00:00:00:00:01",
                      switch="tw1", port=1)


def test_every_rank_gets_torchruns_variables_with_rank_0_as_master():
    envs = rendezvous_env([worker("beijing1", "10.0.0.1"), worker("wuhan1", "10.0.1.1")], port=29611)
    assert [e["RANK"] for e in envs] == ["0", "1"] == [e["NODE_RANK"] for e in envs]
    assert {e["MASTER_ADDR"] for e in envs} == {"10.0.0.1"}
    assert {e["MASTER_PORT"] for e in envs} == {"29611"}
    assert {e["WORLD_SIZE"] for e in envs} == {"2"}
    assert {(e["LOCAL_RANK"], e["LOCAL_WORLD_SIZE"]) for e in envs} == {("0", "1")}
    assert [e["GLOO_SOCKET_IFNAME"] for e in envs] == ["beijing1-eth0", "wuhan1-eth0"]


def test_a_failed_ranks_last_lines_end_with_its_stderr():
    o = RankOutcome(2, "wuhan1", 1, "a\nb\n", "Traceback\nValueError: x\n")
    assert o.failed and o.last_lines(3) == ["b", "Traceback", "ValueError: x"]
    assert RankOutcome(0, "beijing1", None, "", "", why_killed="killed").failed
    assert not RankOutcome(0, "beijing1", 0, "", "").failed

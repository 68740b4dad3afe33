"""Telling whether the Docker engine answers, on sockets that behave as a down or half-started
engine does (no file, nobody listening, listening but silent); the real engine is not touched."""

import socket

import pytest

from twin.errors import TwinError
from twin.host import engine


@pytest.fixture
def sockets(tmp_path):
    made = []

    def make(listen: bool) -> str:
        path = tmp_path / f"s{len(made)}.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        if listen:
            s.listen()
        made.append(s)
        return f"unix://{path}"
    yield make
    for s in made:
        s.close()


def test_no_socket_file_says_so(tmp_path):
    with pytest.raises(TwinError, match=r"not answering on unix://.*: No such file or directory$"):
        engine.engine_version(f"unix://{tmp_path}/docker.sock")


def test_nobody_listening_says_so(sockets):
    with pytest.raises(TwinError, match=r": Connection refused$"):
        engine.engine_version(sockets(listen=False))


def test_an_engine_that_accepts_and_never_answers_is_given_up_on(sockets, monkeypatch):
    monkeypatch.setattr(engine, "PROBE_TIMEOUT_S", 0.3)
    with pytest.raises(TwinError, match=r": no answer within 0.3 s$"):
        engine.engine_version(sockets(listen=True))


def test_a_client_asked_for_while_the_engine_is_down_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(engine, "_client", None)
    monkeypatch.setattr(engine, "SOCKET", f"unix://{tmp_path}/docker.sock")
    for _ in range(2):  # the second call tries again, it does not get a broken client
        with pytest.raises(TwinError, match=r"not reachable on unix://.*No such file"):
            engine.docker_client()
        assert engine._client is None

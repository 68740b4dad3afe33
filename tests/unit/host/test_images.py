"""Reading the engine's answer to an image import."""

from twin.host.images import import_errors


def test_an_import_answer_with_an_error_after_the_upload():
    answer = ('{"status":"Importing","progressDetail":{"current":512},"progress":"512B"}\r\n'
              '{"errorDetail":{"message":"archive/tar: invalid tar header"},'
              '"error":"archive/tar: invalid tar header"}\r\n')
    assert import_errors(answer) == ["archive/tar: invalid tar header"]


def test_a_successful_import_answer():
    answer = '{"status":"sha256:5d41402abc4b2a76b9719d911017c592"}\r\n'
    assert import_errors(answer) == []
    assert import_errors("") == []

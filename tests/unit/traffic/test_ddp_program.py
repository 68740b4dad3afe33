"""traffic.ddp's options are checked before torch is imported (the twin's plain worker image has
none), and a missing torch is one error line."""

import json
import sys

import pytest

from traffic import ddp


@pytest.mark.parametrize("argv", [["--iters", "0"], ["--warmup", "0"], ["--width", "0"],
                                  ["--bucket-cap-mb", "0"], ["--compute-iters", "-1"]])
def test_options_that_cannot_train_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        ddp.main(argv)
    assert exc.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_without_torch_the_rank_prints_one_error_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    assert ddp.main(["--iters", "1"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert "torch is not installed" in json.loads(line)["error"]

"""The ``twin`` command is assembled from one module per verb: every module registers its
subcommand, the help lists them, and main() maps failures to exit codes."""

import ast
import importlib
from pathlib import Path

import pytest

from twin.cli import main as cli

CLI_DIR = Path(cli.__file__).parent
SHARED = {"__init__", "main", "console", "options"}  # modules of twin/cli that are no verb
SUBCOMMANDS = ["doctor", "setup", "validate", "schema", "up", "down", "clean", "exec", "inspect",
               "controller", "link", "calibrate", "trace", "collective", "allreduce", "replay", "run",
               "campaign",
               "experiment", "model", "graph", "demo"]


def subcommands(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_every_module_of_the_package_is_a_listed_verb_with_add_parser_and_run():
    files = {p.stem for p in CLI_DIR.glob("*.py")} - SHARED
    assert files == set(cli.VERBS)
    for verb in cli.VERBS:
        module = importlib.import_module(f"twin.cli.{verb}")
        assert callable(module.add_parser) and callable(module.run), verb


def test_each_subcommand_runs_its_own_module():
    choices = subcommands(cli.build_parser())
    assert list(choices) == SUBCOMMANDS
    owner = {name: name for name in SUBCOMMANDS} | {"allreduce": "collective"}
    for name, parser in choices.items():
        run = parser.get_default("run")
        assert run is importlib.import_module(f"twin.cli.{owner[name]}").run, name


def test_twin_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    listed = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert f"\n    {name} " in listed, name


def test_the_determinism_experiment_keeps_its_command_line():
    args = cli.build_parser().parse_args(
        ["experiment", "determinism", "topologies/fntf-4site.yaml", "--scale", "1/4000",
         "--seconds", "3", "--repeats", "5"])
    assert (args.name, args.topology, args.scale, args.seconds, args.repeats, args.results) == (
        "determinism", "topologies/fntf-4site.yaml", "1/4000", 3.0, 5, "results/experiments")


def test_allreduce_is_collective_with_the_op_fixed():
    parser = cli.build_parser()
    coll = parser.parse_args(["collective", "--op", "alltoall", "--algo", "ring", "hier"])
    ar = parser.parse_args(["allreduce", "topologies/ci-2site.yaml", "--sizes", "1M,8M"])
    assert (coll.op, coll.algo, coll.topology) == ("alltoall", ["ring", "hier"], None)
    assert (ar.op, ar.sizes, ar.topology, ar.iters, ar.timeout) == (
        "allreduce", "1M,8M", "topologies/ci-2site.yaml", 5, 30.0)


def test_a_twin_error_is_one_line_and_exit_1(capsys):
    assert cli.main(["collective", "--sizes", "1M:xx"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("twin: --sizes: ") and err.count("\n") == 1


def test_bad_input_is_one_line_per_problem_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nsites: []\nlinks: 3\n")
    assert cli.main(["up", str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}: ") for line in lines)


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("twin.cli.schema"), "run", interrupted)
    assert cli.main(["schema"]) == 130
    assert capsys.readouterr().err == "twin: interrupted; everything started was removed\n"


@pytest.mark.parametrize("argv", [["up", "topologies/ci-2site.yaml", "--scale", "2"],
                                  ["experiment", "determinism", "topologies/ci-2site.yaml",
                                   "--scale", "2"]])
def test_a_refused_scale_names_the_flag_and_the_reason_in_one_line(argv, capsys, monkeypatch):
    monkeypatch.chdir(CLI_DIR.parent.parent)
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == "twin: --scale '2': must be in (0, 1], e.g. 0.001 or '1/1000'\n"


def test_with_scale_changes_the_bandwidth_scale_only():
    from tests.locations import TOPOS
    from twin.spec.topology import load_topology
    topo = load_topology(TOPOS / "ci-2site.yaml")
    quarter = topo.with_scale("1/4000")
    assert quarter.scale.bandwidth == 1 / 4000
    assert quarter.model_copy(update={"scale": topo.scale}) == topo
    with pytest.raises(ValueError, match="^'x' is not a ratio"):
        topo.with_scale("x")


def test_the_only_import_of_the_cli_is_the_cli_itself():
    """The layers below print through what the CLI hands them (twin.experiments.demo included)."""
    root = CLI_DIR.parent
    importers = []
    for path in root.rglob("*.py"):
        if CLI_DIR in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "twin.cli" or n.startswith("twin.cli.") for n in names):
                importers.append(str(path.relative_to(root)))
    assert importers == []


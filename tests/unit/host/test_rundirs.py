"""Each twin run logs into its own folder; old folders are pruned, the running one never."""

from twin.host import rundirs


def test_a_run_gets_its_own_log_folder_and_old_ones_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(rundirs, "KEEP_RUNS", 3)
    try:
        for i in range(5):
            folder = rundirs.open_run_logs(f"20261121-10000{i}-abcdef")
            assert rundirs.log_dir() == folder and folder.parent == tmp_path
            (folder / "controller.log").write_text(f"run {i}\n")
        kept = sorted(p.name for p in tmp_path.iterdir())
        assert kept == [f"20261121-10000{i}-abcdef" for i in (2, 3, 4)]  # the newest 3
        rundirs.use_run_logs(None)
        assert rundirs.log_dir() == rundirs.run_dir() / "logs"  # no twin: the run directory
        rundirs.use_run_logs(str(tmp_path / kept[0]))  # a command on a detached twin
        assert rundirs.log_dir() == tmp_path / kept[0]
    finally:
        rundirs.use_run_logs(None)

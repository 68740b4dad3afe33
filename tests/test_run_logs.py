"""Each twin run logs into its own folder; old folders are pruned, the running one never."""

from twin import paths


def test_a_run_gets_its_own_log_folder_and_old_ones_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(paths, "KEEP_RUNS", 3)
    try:
        for i in range(5):
            folder = paths.open_run_logs(f"20261121-10000{i}-abcdef")
            assert paths.log_dir() == folder and folder.parent == tmp_path
            (folder / "controller.log").write_text(f"run {i}\n")
        kept = sorted(p.name for p in tmp_path.iterdir())
        assert kept == [f"20261121-10000{i}-abcdef" for i in (2, 3, 4)]  # the newest 3
        paths.use_run_logs(None)
        assert paths.log_dir() == paths.run_dir() / "logs"  # no twin: the run directory
        paths.use_run_logs(str(tmp_path / kept[0]))  # a command on a detached twin
        assert paths.log_dir() == tmp_path / kept[0]
    finally:
        paths.use_run_logs(None)

"""tools/osr_study.py and ms_osr.study: the run plan (fair budgets, complete schedules), resumability and the
score cache."""
import os

from scripts import load_script
from ms_osr.study import finished

STUDY = load_script("tools/osr_study.py")


def test_every_model_gets_the_same_total_budget():
    plan = STUDY.runs_of(1, "runs/x", 1000, 600)
    assert list(plan) == ["restorer", "plain", "wave", "fourier", "channels", "random"]
    steps = {name: run.steps for name, run in plan.items()}
    # reprogrammed = stage 1 (1000) + stage 2 (600) = plain (1600, one complete schedule) = random (1600)
    assert steps["restorer"] + steps["wave"] == steps["plain"] == steps["random"] == 1600
    for name, run in plan.items():
        assert run.out_dir == os.path.join("runs/x", f"{name}_s1")
        assert f"out_dir={run.out_dir}" in run.argv and "runtime.seed=1" in run.argv
    assert "model.kwargs.restorer_ckpt=runs/x/restorer_s1/last.ckpt" in plan["fourier"].argv
    assert "model.kwargs.restorer_ckpt=null" in plan["random"].argv
    assert "model.kwargs.transform=channels" in plan["channels"].argv
    assert all("runtime.threads=1" in run.argv for run in STUDY.runs_of(1, "runs/x", 10, 5, threads=1).values())


def test_finished_reads_the_training_log(tmp_path):
    run = tmp_path / "r"
    assert not finished(str(run), 10)
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"x")
    (run / "train_log.csv").write_text("step,epoch,loss\n5,0,0.1\n")
    assert not finished(str(run), 10)
    (run / "train_log.csv").write_text("step,epoch,loss\n5,0,0.1\n10,0,0.1\n")
    assert finished(str(run), 10)


def test_dry_run_prints_resumable_commands(tmp_path, capsys):
    os.makedirs(tmp_path / "restorer_s0")
    (tmp_path / "restorer_s0" / "last.ckpt").write_bytes(b"x")
    assert STUDY.main(["--seeds", "0", "--runs", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and lines[0].endswith("--resume") and not lines[1].endswith("--resume")


def test_score_cache_round_trip_and_photo_check(tmp_path):
    import numpy as np
    from ms_osr.study import load_scores, mean_psnr, save_scores

    scores = {("plain", "rain"): np.array([[20.0, 0.5], [30.0, 0.7]]), ("plain", "haze"): np.array([[10.0, 0.1], [np.inf, 1.0]])}
    path = str(tmp_path / "s.npz")
    assert load_scores(path, ["a", "b"]) is None
    save_scores(path, ["a", "b"], scores)
    back = load_scores(path, ["a", "b"])
    assert set(back) == set(scores) and all(np.array_equal(back[k], scores[k]) for k in scores)
    assert load_scores(path, ["a", "c"]) is None  # other photos: recompute
    per_image = mean_psnr(back, "plain", ["rain", "haze"])
    assert per_image[0] == 15.0 and np.isfinite(per_image[1])  # an exact match is capped, not infinite


def test_seeds_are_averaged_per_photo_before_the_intervals():
    import numpy as np
    from ms_osr.study import ci_rows, pair_rows, pool_seeds

    def seed(a, b):  # two photos, one degradation each of "rain" and "haze"
        return {("degraded", "rain"): np.array([[10.0, 0], [12.0, 0]]), ("degraded", "haze"): np.array([[14.0, 0], [16.0, 0]]),
                ("net", "rain"): np.array([[a, 0], [b, 0]]), ("net", "haze"): np.array([[a, 0], [b, 0]])}

    pooled = pool_seeds([seed(20.0, 30.0), seed(22.0, 26.0)], {"rain": ["rain"], "mean": ["rain", "haze"]})
    assert list(pooled) == ["degraded", "net"]
    np.testing.assert_allclose(pooled["net"]["rain"], [21.0, 28.0])  # per photo over seeds: 2 units, not 4
    np.testing.assert_allclose(pooled["degraded"]["mean"], [12.0, 14.0])
    rows = ci_rows(pooled, ["rain", "mean"])
    assert rows[1]["model"] == "net" and rows[1]["rain"].startswith("24.50 [")
    pairs = pair_rows(pooled, [("net", "degraded"), ("net", "absent")], ["rain"])
    assert len(pairs) == 1 and pairs[0]["rain"].startswith("+13.50 [") and "won 2, lost 0" in pairs[0]["rain"]


def test_a_report_is_written_whole_and_printed(tmp_path, capsys):
    """The studies write <name>.md (and .json) through one atomic writer: no temporary file is left behind."""
    import json

    from ms_osr.study import write_report

    out = tmp_path / "new" / "folder"
    assert write_report(str(out), "osr_study", "# table\n", {"table": [1, 2]}) == "# table\n"
    assert (out / "osr_study.md").read_text() == "# table\n"
    assert json.loads((out / "osr_study.json").read_text()) == {"table": [1, 2]}
    assert sorted(p.name for p in out.iterdir()) == ["osr_study.json", "osr_study.md"]
    assert capsys.readouterr().out == "# table\n\n"
    write_report(str(out), "hair_study", "x")
    assert not (out / "hair_study.json").exists()

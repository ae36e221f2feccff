"""tools/osr_study.py: the run plan (fair budgets, complete schedules) and resumability."""
import os

from scripts import load_script

STUDY = load_script("tools/osr_study.py")


def test_every_model_gets_the_same_total_budget():
    plan = STUDY.runs_of(1, "runs/x", 1000, 600)
    assert list(plan) == ["restorer", "plain", "wave", "fourier", "channels", "random"]
    steps = {name: s for name, (_, s, _) in plan.items()}
    # reprogrammed = stage 1 (1000) + stage 2 (600) = plain (1600, one complete schedule) = random (1600)
    assert steps["restorer"] + steps["wave"] == steps["plain"] == steps["random"] == 1600
    for name, (out, _, argv) in plan.items():
        assert out == os.path.join("runs/x", f"{name}_s1") and f"out_dir={out}" in argv and "runtime.seed=1" in argv
    assert "model.kwargs.restorer_ckpt=runs/x/restorer_s1/last.ckpt" in plan["fourier"][2]
    assert "model.kwargs.restorer_ckpt=null" in plan["random"][2]
    assert "model.kwargs.transform=channels" in plan["channels"][2]
    assert all("runtime.threads=1" in argv for _, _, argv in STUDY.runs_of(1, "runs/x", 10, 5, threads=1).values())


def test_finished_reads_the_training_log(tmp_path):
    run = tmp_path / "r"
    assert not STUDY.finished(str(run), 10)
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"x")
    (run / "train_log.csv").write_text("step,epoch,loss\n5,0,0.1\n")
    assert not STUDY.finished(str(run), 10)
    (run / "train_log.csv").write_text("step,epoch,loss\n5,0,0.1\n10,0,0.1\n")
    assert STUDY.finished(str(run), 10)


def test_dry_run_prints_resumable_commands(tmp_path, capsys):
    os.makedirs(tmp_path / "restorer_s0")
    (tmp_path / "restorer_s0" / "last.ckpt").write_bytes(b"x")
    assert STUDY.main(["--seeds", "0", "--runs", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and lines[0].endswith("--resume") and not lines[1].endswith("--resume")

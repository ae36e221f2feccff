"""tools/hair_study.py: every model gets the same data, steps and schedule; the plan resumes."""
from scripts import load_script

STUDY = load_script("tools/hair_study.py")


def test_every_model_gets_the_same_data_steps_and_schedule():
    plan = STUDY.runs_of(2, "runs/h", 600, 0.1, threads=1)
    assert set(plan) == {"res_hair", "res_hair_sharp", "res_hair_sharp_sep", "restormer", "restormer_small"}
    for name, run in plan.items():
        assert run.steps == 600 and run.seed == 2 and run.out_dir == f"runs/h/{name}_s2"
        assert run.argv[:2] == ["-c", STUDY.CONFIG]  # one config: same data, optimiser and schedule
        assert "train.total_steps=600" in run.argv and "runtime.seed=2" in run.argv and "runtime.threads=1" in run.argv
    assert "model.kwargs.hsn_temperature=0.1" in plan["res_hair_sharp"].argv
    # the label-loss variant differs from res_hair_sharp by that one option
    sep, sharp = ({a for a in plan[n].argv if not a.startswith("out_dir=")} for n in ("res_hair_sharp_sep",
                                                                                   "res_hair_sharp"))
    assert sep - sharp == {"train.loss.giv_separation=0.1"} and sharp <= sep
    assert "model.name=restormer_small_wide" in plan["restormer"].argv


def test_capacity_matched_baseline_is_not_smaller():
    import ms_osr  # noqa: F401
    from ms_osr.registry import create_model

    hair = sum(p.size for p in create_model("res_hair_small").get_parameters())
    wide = sum(p.size for p in create_model("restormer_small_wide").get_parameters())
    assert hair <= wide <= 1.1 * hair


def test_dry_run_lists_only_the_chosen_models(tmp_path, capsys):
    assert STUDY.main(["--seeds", "0", "--runs", str(tmp_path), "--models", "res_hair", "restormer",
                       "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "res_hair_s0" in lines[0] and "restormer_s0" in lines[1]

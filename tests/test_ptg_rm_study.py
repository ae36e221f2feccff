"""tools/ptg_rm_study.py: the controls get the plugin's budget (steps, parameters), the priors differ only in g."""
import pytest

from scripts import load_script

STUDY = load_script("tools/ptg_rm_study.py")


def _arg(run, key):
    return next(a.split("=", 1)[1] for a in run.argv if a.startswith(key + "="))


def test_controls_get_the_plugins_steps_and_data():
    plan = STUDY.Plan("griddehazenet_small", 1, "runs/p", 400, 200, threads=1)
    runs = {r.out_dir.rsplit("/", 1)[1]: r for r in plan.phase1() + plan.phase2()}
    assert set(runs) == set(STUDY.MODELS)
    assert {r.seed for r in runs.values()} == {1} and all("runtime.threads=1" in r.argv for r in runs.values())
    assert runs["base"].steps == 400
    assert runs["base_longer"].steps == runs["wide"].steps == 600  # base steps + plugin steps
    assert all(runs[n].steps == 200 for n in ("ptg_constant", "ptg_stats", "ptg_giv"))
    for name in ("base", "base_longer", "wide"):  # one data/optimiser/schedule config per phase
        assert runs[name].argv[1] == STUDY.BASE_CONFIG
    for name in ("ptg_constant", "ptg_stats", "ptg_giv"):
        run = runs[name]
        assert run.argv[1] == STUDY.PTG_CONFIG
        assert _arg(run, "model.kwargs.base_ckpt") == "runs/p/griddehazenet_small/seed1/base/last.ckpt"
    assert _arg(runs["ptg_constant"], "model.kwargs.osf") == "constant"
    assert "standardize: runs/p/griddehazenet_small/seed1/output_stats_std.npz" in \
        _arg(runs["ptg_stats"], "model.kwargs.osf_kwargs")
    assert "feature: global_vector" in _arg(runs["ptg_giv"], "model.kwargs.osf_kwargs")
    assert "standardize" not in " ".join(plan.ptg_overrides("ptg_giv", with_standardize=False))


@pytest.mark.parametrize("base", list(STUDY.BASES))
def test_widened_base_has_the_plugins_parameter_count(base):
    import ms_osr  # noqa: F401
    from ms_osr.build import create_model
    from ms_osr.models.ptg_rm import count_params

    name, kwargs = STUDY.BASES[base]
    target = count_params(create_model(base)) + count_params(create_model("ptg_rm", osf_dim=STUDY.OSF_DIM))
    assert abs(count_params(create_model(name, **kwargs)) - target) <= 0.01 * target


def test_dry_run_prints_every_step_in_order(tmp_path, capsys):
    assert STUDY.main(["--seeds", "0", "--bases", "griddehazenet_small", "--runs", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 8  # base, wide, two calibrations, longer, three plugins
    assert "/base " in lines[0] and "/wide " in lines[1] and "--calibrate-osf" in lines[2] + lines[3]
    assert lines[4].split("out_dir=")[1].startswith(str(tmp_path / "griddehazenet_small/seed0/base_longer"))

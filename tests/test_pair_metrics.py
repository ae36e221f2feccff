"""tools/pair_metrics.py: paired differences of two separately made test.py evaluations."""
import json

import pytest

from scripts import load_script

tool = load_script("tools/pair_metrics.py")


def _write(path, shift, photos=("a", "b", "c", "d"), extra=()):
    images = [{"image": f"{p}_{g}_s{s}", "group": g, "photo": p, "seed": s, "psnr": 20.0 + i + s + shift(p, g)}
              for g in ("rain", "haze") for i, p in enumerate(photos) for s in (0, 1)]
    images += [dict(r) for r in extra]
    path.write_text(json.dumps({"images": images}))
    return str(path)


def test_pairs_per_group_and_overall_with_wins_and_losses(tmp_path, capsys):
    a = _write(tmp_path / "a.json", lambda p, g: 0.0)
    # B: +1 dB on every rain photo, -0.5 on haze photo 'a' only
    b = _write(tmp_path / "b.json", lambda p, g: 1.0 if g == "rain" else (-0.5 if p == "a" else 0.0),
               extra=[{"image": "z_rain_s0", "group": "rain", "photo": "z", "seed": 0, "psnr": 50.0}])
    assert tool.main([a, b]) == 0
    out = capsys.readouterr().out
    assert "note: 0 input(s) only in A and 1 only in B are left out" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:] if line.split()}
    # columns: group images psnr_A psnr_B dpsnr dpsnr_lo dpsnr_hi won lost
    assert rows["rain"][1] == "4" and float(rows["rain"][4]) == pytest.approx(1.0)
    assert rows["rain"][7:] == ["4", "0"]
    assert float(rows["haze"][4]) == pytest.approx(-0.125, abs=0.01) and rows["haze"][7:] == ["0", "1"]
    # overall, each photograph counts once (its groups and seeds averaged): photo a +0.25, the others +0.5
    assert rows["all"][1] == "4" and float(rows["all"][4]) == pytest.approx(0.4375, abs=0.01)
    assert rows["all"][7:] == ["4", "0"]


def test_a_bad_file_is_one_line_naming_it(tmp_path, capsys):
    a = _write(tmp_path / "a.json", lambda p, g: 0.0)
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({"images": [{"image": "x", "group": "rain"}]}))  # no psnr
    assert tool.main([a, str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "psnr" in err
    assert tool.main([a, str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_files_with_no_input_in_common_are_one_line(tmp_path, capsys):
    a = _write(tmp_path / "a.json", lambda p, g: 0.0)
    b = _write(tmp_path / "b.json", lambda p, g: 0.0, photos=("e", "f"))
    assert tool.main([a, b]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and a in err and b in err and "no input in common" in err


def test_runs_of_one_recipe_joined_by_commas_are_averaged_per_input(tmp_path, capsys):
    """Three training runs of B (+0, +1, +2 dB on rain) pair as their mean, +1 dB; an input one run lacks is left
    out and counted."""
    a = _write(tmp_path / "a.json", lambda p, g: 0.0)
    runs = [_write(tmp_path / f"b{k}.json", lambda p, g, k=k: float(k) if g == "rain" else 0.0,
                   extra=[{"image": "z_rain_s0", "group": "rain", "photo": "z", "seed": 0, "psnr": 50.0}] * (k > 0))
            for k in range(3)]
    assert tool.main([a, ",".join(runs)]) == 0
    out = capsys.readouterr().out
    assert f"note: 1 input(s) not scored by every run of {','.join(runs)} are left out" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line[0] != "n"}
    assert float(rows["rain"][4]) == pytest.approx(1.0) and rows["rain"][1] == "4"
    assert float(rows["haze"][4]) == pytest.approx(0.0)
    assert tool.main([a, ","]) == 2 and "no metrics.json named" in capsys.readouterr().err

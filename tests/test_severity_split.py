"""tools/severity_split.py: light/heavy halves of a test.py metrics.json, and one line for a bad file."""
import json

import pytest

from ms_osr.errors import EvaluationError
from scripts import load_script

tool = load_script("tools/severity_split.py")

# four rain inputs: the two light ones (input >= 25 dB) made worse and darker, the heavy ones improved
RECORDS = [
    {"group": "rain", "psnr_in": 30.0, "psnr": 28.0, "offset": -6.0},
    {"group": "rain", "psnr_in": 26.0, "psnr": 27.0, "offset": -2.0},
    {"group": "rain", "psnr_in": 20.0, "psnr": 24.0, "offset": 8.0},
    {"group": "rain", "psnr_in": 15.0, "psnr": 21.0, "offset": 10.0},
    {"group": "noise_25", "psnr_in": 20.0, "psnr": 27.0, "offset": 0.0},
]


def test_halves_at_the_median_and_at_a_given_split():
    light, heavy, whole = tool.split_rows(RECORDS, "rain")
    assert light["split_db"] == pytest.approx(23.0)  # median of 30, 26, 20, 15
    assert (light["n"], light["psnr_in"], light["gain"], light["worse"], light["offset"]) == (2, 28.0, -0.5, 1, -4.0)
    assert (heavy["n"], heavy["psnr_in"], heavy["gain"], heavy["worse"], heavy["offset"]) == (2, 17.5, 5.0, 0, 9.0)
    assert (whole["n"], whole["gain"], whole["worse"]) == (4, 2.25, 1)
    assert whole["spearman"] == pytest.approx(-1.0)  # the lighter the input, the smaller the gain
    light, heavy, _ = tool.split_rows(RECORDS, "rain", at=29.0)
    assert (light["n"], heavy["n"]) == (1, 3)
    light, heavy, _ = tool.split_rows(RECORDS, "rain", at=40.0)
    assert light["n"] == 0 and tool.format_row(light).strip() == "light: no inputs"


def test_main_prints_each_group(tmp_path, capsys):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"images": RECORDS}))
    assert tool.main([str(path), "--groups", "rain", "haze"]) == 0
    out = capsys.readouterr().out
    assert "rain (split at 23.00 dB input PSNR)" in out and "Spearman(input PSNR, gain) -1.00" in out
    assert "haze: no inputs" in out


@pytest.mark.parametrize("content, problem", [
    (None, "cannot read"),
    ("{not json", "not a test.py metrics.json"),
    (json.dumps({"images": [{"group": "rain", "psnr": 20.0}]}), "need group, offset, psnr, psnr_in"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path, capsys, content, problem):
    path = tmp_path / "metrics.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(EvaluationError, match=problem):
        tool.read_metrics_records(str(path))
    assert tool.main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and problem in err

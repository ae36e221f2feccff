"""The benchmark scripts run end to end and print their tables (no timing assertions: the CI box is shared)."""
import os
import re
import subprocess
import sys

import pytest

from ms_osr import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = re.compile(r"^\d+(\.\d+)?x?$")


def _run(args, timeout):
    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)  # the script sets each worker's ISA itself
    env.pop("DNNL_MAX_CPU_ISA", None)  # set beside it by the conftest's import ms_osr (oneDNN 2.x spelling)
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def _table_rows(text):
    """Body rows of the (single) markdown table in ``text``: header and separator lines dropped."""
    lines = text.splitlines()
    # rows after the last separator line (|---|...), up to the end of that table
    seps = [i for i, ln in enumerate(lines) if ln.startswith("|") and set(ln.replace("|", "").strip()) <= {"-", ":"}]
    assert seps, text
    body = []
    for ln in lines[seps[-1] + 1:]:
        if not ln.startswith("|"):
            break
        body.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return body


@pytest.mark.slow
def test_conv_cpu_quick_prints_numeric_table(tmp_path):
    out = _run(["benchmarks/conv_cpu.py", "--quick", "--json", str(tmp_path / "conv.json")], timeout=600)
    assert "fix cap=AVX2" in out and "no-fix cap=None" in out
    rows = _table_rows(out)
    assert len(rows) == 21, out  # every case of conv_cpu.CASES
    names = [r[0] for r in rows]
    assert any(n.startswith("conv3x3") for n in names) and any(n.startswith("dw3x3") for n in names)
    assert any(n.startswith("dw3x3") and n.endswith("ms_osr kernel") for n in names)  # C++ depthwise kernel
    assert any(n.startswith("conv3x3") and n.endswith("ms_osr kernel") for n in names)  # C++ dense kernel
    assert any(n.startswith("conv1x1") for n in names) and any(n.startswith("matmul") for n in names)
    for r in rows:
        # GFLOP, MS no-fix, MS fix, PyTorch, speed-up, ratio: all numbers; verdict yes/NO.
        assert all(NUM.match(c) for c in r[1:7]), (r, out)
        assert r[7] in ("yes", "NO"), (r, out)
        assert float(r[3]) > 0 and float(r[4]) > 0
    assert "errors:" not in out, out
    assert (tmp_path / "conv.json").stat().st_size > 100


@pytest.mark.slow
def test_memory_train_reports_every_phase(tmp_path):
    """Per-phase peaks come out numeric for MindSpore and the PyTorch reference; the step needs at least the
    built model."""
    out = _run(["benchmarks/memory_train.py", "--model", "osr_resnet", "--size", "32", "--threads", "1",
                "--variants", "default", "batch1", "torch", "--json", str(tmp_path / "m.json")], timeout=600)
    rows = _table_rows(out)
    assert [r[1] for r in rows] == ["default", "batch1", "torch"], out
    for r in rows:
        peaks = [float(c) for c in r[3:10]]  # import, build, compile, compiled, step 1, steps, held (MB)
        assert all(p > 50 for p in peaks), r
        assert peaks[4] >= peaks[1] * 0.9 and peaks[6] > 0, r  # the step holds the model (VmHWM resets in between)
    assert (tmp_path / "m.json").stat().st_size > 100


@pytest.mark.slow
def test_bench_models_quick_runs_every_model(tmp_path):
    out = _run(["benchmarks/bench_models.py", "--quick", "--json", str(tmp_path / "models.json")], timeout=900)
    assert "oneDNN cap AVX2, effective AVX2" in out
    rows = _table_rows(out)
    models = {r[0] for r in rows}
    assert {"Restormer", "Res-HAIR", "GridDehazeNet", "OSR Net", "OSR(OSR Net)",
            "PTG-RM(GridDehazeNet)+CLIP"} <= models, out
    for r in rows:
        assert r[-1] == "", (r, out)  # the note column carries errors / "not available"
        # params, GFLOP, MS s, PT s, MS/PT, MS GFLOP/s, PT GFLOP/s, x floor, RSS MS, RSS PT: numbers
        assert all(NUM.match(c) for c in r[2:12]), (r, out)
        if r[1].startswith("infer"):  # same architecture, same converted weights
            assert float(r[12]) <= 1e-4, (r, out)
    import json

    report = json.loads((tmp_path / "models.json").read_text())
    assert report["quick"] and len(report["rows"]) == 2 * len(models)


@pytest.mark.slow
def test_bench_models_train_recompute_phase(tmp_path):
    """The memory option row: MindSpore recomputes, PyTorch runs its plain step; a typo in a phase is refused."""
    out = _run(["benchmarks/bench_models.py", "--quick", "--models", "griddehazenet", "--phases",
                "train,train_recompute"], timeout=600)
    rows = {r[1]: r for r in _table_rows(out)}
    assert set(rows) == {"train", "train_recompute"}, out
    assert rows["train"][-1] == "" and "MindSpore recomputes" in rows["train_recompute"][-1], out
    assert all(NUM.match(c) for c in rows["train_recompute"][2:12]), out
    bad = subprocess.run([sys.executable, "benchmarks/bench_models.py", "--phases", "trian"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown phase(s) ['trian']" in bad.stderr


def _bench_module(name):
    import importlib

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))


def test_missing_model_files_are_reported_not_available():
    bm = _bench_module("bench_models")
    spec = bm.ModelSpec("Ghost", "ghost", "ghost", lambda kw, subs: None,
                        required_files=("ms_osr/models/does_not_exist.py",))
    assert bm.availability(spec).startswith("not available (missing ms_osr/models/does_not_exist.py")
    assert all(bm.availability(m) is None for m in bm.MODELS)  # every benchmarked model is present
    report = {"peak": {"gflops": {"ms": 1.0, "torch": 2.0}},
              "rows": [{"model": "Ghost", "phase": "infer64", "error": bm.availability(spec)}]}
    assert "not available" in bm.render(report)


def test_results_block_is_spliced_without_touching_the_analysis(tmp_path):
    w = _bench_module("_workers")
    path = tmp_path / "results.md"
    path.write_text("# R\n\nintro\n\n<!-- t:begin -->\nold\n<!-- t:end -->\n\nanalysis\n")
    new = w.splice_block(str(path), "t", "head 1\nhead 2\n\n| a |\n|---|")
    assert new.startswith("# R\n\nintro\n\n<!-- t:begin -->\nhead 1  \nhead 2\n\n| a |")
    assert new.endswith("<!-- t:end -->\n\nanalysis\n") and "old" not in new
    assert w.splice_block(str(tmp_path / "none.md"), "t", "x").count("<!-- t:begin -->") == 1


def test_profile_ops_train_table(tmp_path):
    """One profiled training step of a tiny Restormer: op types and layers, shares adding up."""
    out_md = tmp_path / "prof.md"
    out = _run(["benchmarks/profile_ops.py", "--model", "restormer_tiny", "--size", "32", "--phase", "train",
                "--top", "40", "--out", str(out_md)], timeout=600)
    assert out_md.read_text() in out
    lines = out.splitlines()
    types_start = lines.index("| op type | calls | kernel ms | share |")
    types = []
    for ln in lines[types_start + 2:]:
        if not ln.startswith("|"):
            break
        types.append([c.strip() for c in ln.strip("|").split("|")])
    names = {t[0] for t in types}
    assert {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"} <= names, out  # backward really profiled
    shares = [float(t[3].rstrip("%")) for t in types]
    assert shares == sorted(shares, reverse=True) and 95.0 <= sum(shares) <= 100.5, out
    layers = _table_rows(out)
    # kernels are attributed to the model's own layers; which layers MindSpore's profiler names varies from run
    # to run (the same tiny step once names the depthwise convs' Custom kernels, once only the dense convs)
    blocks = ("attn", "ffn", "dwconv", "qkv", "project_in", "project_out")
    assert sum(any(b in r[1] for b in blocks) for r in layers) >= 3, out
    if kernels.enabled():
        assert "Custom" in names, out  # the C++ kernels ran in the profiled step


def test_combine_later_run_replaces_same_model_and_phase(tmp_path):
    import json

    bm = _bench_module("bench_models")

    def report(date, rows):
        info = {"ms": {"version": "2.10.0", "isa_cap": "AVX2", "effective_isa": "AVX2", "rss_start_mb": 490},
                "torch": {"version": "2.13.0", "rss_start_mb": 330}}
        return {"date": date, "machine": {"cpu": "cpu", "isa": "avx512", "cores": 2, "load": [1.0, 1.0, 1.0]},
                "python": "3.11", "threads": 2, "quick": False,
                "peak": {"n": 2048, "gflops": {"ms": 90.0, "torch": 150.0}, "info": info}, "rows": rows}

    def row(key, phase, ms_s):
        return {"model": key.upper(), "key": key, "phase": phase, "params": 1e6, "flops": 1e9, "ms_s": ms_s,
                "torch_s": 1.0, "maxrss_mb": {"ms": 100.0, "torch": 50.0}, "max_abs_diff": 1e-7}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report("day 1", [row("gdn", "infer256", 5.0), row("gdn", "train", 3.0)])))
    b.write_text(json.dumps(report("day 2", [row("gdn", "infer256", 2.0), row("osr", "infer256", 4.0)])))
    out = tmp_path / "results.md"
    assert bm.main(["--combine", f"{a},{b}", "--out", str(out)]) == 0
    body = _table_rows(out.read_text().split("<!-- bench_models:end -->")[0])
    assert [(r[0], r[1], r[6]) for r in body] == [("GDN", "infer256", "2.00"), ("GDN", "train", "3.00"),
                                                 ("OSR", "infer256", "4.00")]
    assert "run 1: day 1" in out.read_text() and "run 2: day 2" in out.read_text()

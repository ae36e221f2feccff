"""Images of many sizes: bounded compiled graphs (ms_osr.graphs) and automatic tiling (ms_osr.memory_plan)."""
import numpy as np
import pytest

import ms_osr  # noqa: F401
import mindspore as ms

import toy_restorers as toys
from ms_osr.graphs import GraphRunner, GraphStrategyError
from ms_osr.inference import Restorer
from ms_osr.memory_plan import MemoryCost, MemoryLimitError, MemoryPlanner, parse_memory

SIZES = [(23, 31), (40, 17), (33, 33), (18, 45), (29, 26), (37, 21), (44, 40), (16, 16)]


def _img(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def _seeded(net, seed=0):
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(rng.normal(0, 0.2, p.shape).astype(np.float32)))
    return net


def _reference(net, img):
    """The one-image path: a fresh static graph of exactly this size, released afterwards."""
    return Restorer(net, shapes="static", max_graphs=1, clip=False)(img)


# ----------------------------------------------------------------------------- graph counts
def test_folder_of_many_sizes_keeps_the_static_graphs_bounded():
    net = _seeded(toys.toy_convnet(8))
    r = Restorer(net, shapes="static", max_graphs=3, clip=False)
    outs = [r(_img(h, w, i)) for i, (h, w) in enumerate(SIZES)]
    assert r.runner.stats.compiles == len(SIZES)
    assert r.runner.graphs_alive <= 3 and len(net.compile_cache) <= 3
    assert r.runner.stats.evictions == 6  # all 3 released at the 4th and at the 7th size
    # a released size compiles again and still gives the same result; the others stay compiled
    again = r(_img(*SIZES[0], 0))
    np.testing.assert_array_equal(again, outs[0])
    assert r.runner.graphs_alive <= 3
    compiled = r.runner.stats.compiles
    r(_img(*SIZES[0], 0))
    assert r.runner.stats.compiles == compiled


def test_dynamic_strategy_compiles_once_and_matches_static_graphs():
    net = _seeded(toys.toy_unet(8))
    r = Restorer(net, shapes="dynamic", clip=False)
    outs = [r(_img(h, w, i)) for i, (h, w) in enumerate(SIZES)]
    assert r.runner.stats.compiles == 1 and r.runner.graphs_alive == 1
    for i in (0, 3, 6):
        np.testing.assert_allclose(outs[i], _reference(net, _img(*SIZES[i], i)), atol=1e-5)


def test_auto_falls_back_to_buckets_when_dynamic_shapes_do_not_compile():
    net = toys.toy_column_conv()
    r = Restorer(net, shapes="auto", max_graphs=2, bucket=16, clip=False)
    for i, (h, w) in enumerate(SIZES):
        out = r(_img(h, w, i))
        assert out.shape == (h, w, 3)
    assert r.runner.strategy == "bucket"
    # 8 sizes fall into the 16-px buckets 32x32, 48x16, 48x48, 32x48, 16x16 ...: never more than 2 alive
    assert r.runner.graphs_alive <= 2


def test_bucket_padding_is_exact_for_a_local_net_away_from_the_padded_border():
    net = _seeded(toys.toy_convnet(8))
    r = Restorer(net, shapes="bucket", bucket=32, clip=False)
    img = _img(37, 50, 3)
    out, ref = r(img), _reference(net, img)
    # receptive radius 3: only the last 3 rows/columns see the reflected bucket padding
    np.testing.assert_allclose(out[:-3, :-3], ref[:-3, :-3], atol=1e-6)
    assert r.runner.pad_multiple(1) == 32


def test_tiles_share_one_static_graph_beside_the_dynamic_one():
    net = _seeded(toys.toy_global(8))
    img = _img(70, 90, 5)
    r = Restorer(net, tile=32, tile_overlap=16, shapes="auto", clip=False)
    out = r(img)
    ref = Restorer(net, tile=32, tile_overlap=16, shapes="static", clip=False)(img)
    np.testing.assert_array_equal(out, ref)
    assert r.runner.stats.compiles == 1  # the tiles' (x, giv) graph; the vector itself is not a graph
    small = _img(20, 27, 6)  # not tiled: the dynamic-shape graph
    np.testing.assert_allclose(r(small), _reference(net, small), atol=1e-5)
    assert r.runner.strategy == "dynamic" and r.runner.stats.compiles == 2


@pytest.mark.slow
def test_res_hair_dynamic_graph_matches_the_static_path():
    from ms_osr.registry import create_model

    net = create_model("res_hair_tiny", seed=0)
    r = Restorer(net, shapes="dynamic", clip=False)
    for i, (h, w) in enumerate([(40, 56), (21, 30)]):  # the second is below the 32 px minimum
        img = _img(h, w, i)
        np.testing.assert_allclose(r(img), _reference(net, img), atol=1e-4)
    assert r.runner.stats.compiles == 1


class _L1(ms.nn.Cell):
    """A training-shaped call: (input, target of the same shape, a fixed scalar)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, y, scale):
        return ms.ops.abs(self.net(x) - y).mean() * scale


def test_dynamic_training_shaped_call_compiles_once_for_crops_of_many_sizes():
    loss = _L1(_seeded(toys.toy_convnet(4)))
    runner = GraphRunner(loss, "dynamic")
    scale = ms.Tensor(2.0, ms.float32)
    for i, side in enumerate((24, 32, 40)):
        x, y = (ms.Tensor(_img(side, side, i + k).transpose(2, 0, 1)[None].repeat(2, 0)) for k in (0, 9))
        got = float(runner(x, y, scale).asnumpy())
        want = float(np.abs(loss.net(x).asnumpy() - y.asnumpy()).mean() * 2.0)
        assert got == pytest.approx(want, rel=1e-5)
    assert runner.stats.compiles == 1


def test_graph_runner_rejects_bad_settings():
    net = toys.toy_convnet(4)
    with pytest.raises(GraphStrategyError, match="unknown graph strategy 'fast'"):
        GraphRunner(net, "fast")
    with pytest.raises(GraphStrategyError, match="max_graphs"):
        GraphRunner(net, "static", max_graphs=0)


# ----------------------------------------------------------------------------- memory planning
@pytest.mark.parametrize("text,mib", [("4G", 4096.0), ("4GB", 4096.0), ("512M", 512.0), ("1.5GiB", 1536.0),
                                      ("300", 300.0)])
def test_parse_memory(text, mib):
    assert parse_memory(text) == pytest.approx(mib)


@pytest.mark.parametrize("text", ["lots", "4X", "-1G", "0"])
def test_parse_memory_rejects_bad_values(text):
    with pytest.raises(MemoryLimitError, match="--max-memory"):
        parse_memory(text)


def test_planner_tiles_only_over_the_limit_and_fits_the_tile():
    cost = MemoryCost(fixed_mib=100.0, mib_per_mpix=5000.0)
    planner = MemoryPlanner(cost, calibrated=True, limit_mib=2048.0)
    assert planner.plan(512, 512).tile is None  # 100 + 1311 MiB + buffers
    big = planner.plan(3000, 4000, multiple=8)
    assert big.tile is not None and big.tile % 64 == 0 and big.tile % 8 == 0
    buffers = 40 * 12e6 / 2 ** 20
    assert cost.estimate_mib(big.tile ** 2) + buffers <= 2048.0
    assert cost.estimate_mib((big.tile + 64) ** 2) + buffers > 2048.0
    assert "4000x3000" in big.notice and "tiles" in big.notice and "\n" not in big.notice


def test_uncalibrated_network_gets_a_conservative_guess():
    planner = MemoryPlanner.for_net(toys.toy_convnet(4), limit_mib=4096.0)
    assert not planner.calibrated
    assert "uncalibrated" in planner.plan(3000, 4000).notice


def test_restorer_tiles_automatically_and_says_so_once():
    net = _seeded(toys.toy_convnet(8))
    notes = []
    tiny = MemoryPlanner(MemoryCost(fixed_mib=0.0, mib_per_mpix=2e5), calibrated=True, limit_mib=8000.0)
    r = Restorer(net, memory=tiny, notify=notes.append, tile_overlap=32, clip=False)
    img = _img(300, 260, 1)
    out = r(img)
    assert r.last_plan is not None and len(r.last_plan) > 1
    r(_img(310, 270, 2))
    assert len(notes) == 1 and "tiles" in notes[0]
    np.testing.assert_allclose(out, _reference(net, img), atol=1e-4)
    # --tile overrides the planner
    forced = Restorer(net, tile=128, memory=tiny, notify=notes.append, clip=False)
    forced(img)
    assert forced.last_plan.tile_h == 128 and len(notes) == 1


# ----------------------------------------------------------------------------- command line
def _cli():
    import importlib.util
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("ms_osr_test_cli_graphs", os.path.join(root, "test.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_memory_limit_tiles_with_one_note_and_rejects_bad_sizes(tmp_path, capsys):
    from ms_osr.checkpoint import save_checkpoint
    from ms_osr.config import save_config
    from ms_osr.data.io import write_image

    cli = _cli()
    save_checkpoint(toys.toy_convnet(width=8), str(tmp_path / "toy.ckpt"))
    save_config({"model": {"name": "toy_convnet", "kwargs": {"width": 8}}}, str(tmp_path / "toy.yaml"))
    inp = tmp_path / "in"
    inp.mkdir()
    for i, (h, w) in enumerate([(300, 280), (290, 310), (64, 48)]):
        write_image(str(inp / f"im{i}.png"), _img(h, w, i))
    ck = str(tmp_path / "toy.ckpt")
    rc = cli.main(["--ckpt", ck, "--input", str(inp), "--output", str(tmp_path / "out"), "--max-memory", "1M"])
    out = capsys.readouterr().out
    assert rc == 0
    notes = [ln for ln in out.splitlines() if ln.startswith("note:") and "tiles" in ln]
    assert len(notes) == 1 and "guessed (uncalibrated model)" in notes[0] and "128x128 tiles" in notes[0]
    rc = cli.main(["--ckpt", ck, "--input", str(inp), "--output", str(tmp_path / "out2"), "--max-memory", "lots"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err == ["error: --max-memory 'lots': expected a size such as 4G, 4096M or 1.5GB"]


@pytest.mark.slow
def test_sizes_benchmark_prints_one_row_per_model_and_strategy(tmp_path):
    import os
    import subprocess
    import sys

    from ms_osr.checkpoint import save_checkpoint
    from ms_osr.config import save_config

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ck = tmp_path / "ckpt"
    ck.mkdir()
    save_checkpoint(_seeded(toys.toy_unet(4)), str(ck / "toy.ckpt"))
    save_config({"model": {"name": "toy_unet", "kwargs": {"width": 4}}}, str(ck / "toy.yaml"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(root, "tests"), root]),
               SIZES_IMPORT="toy_restorers")
    proc = subprocess.run([sys.executable, "benchmarks/sizes.py", "--ckpt-dir", str(ck), "--images", "3", "--check", "1",
                           "--strategies", "auto", "static"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| toy |")]
    assert len(rows) == 2 and "dynamic (auto)" in rows[0] and "| static |" in rows[1], proc.stdout

"""Every dataset layout on small generated folders; determinism, sharding, bad files."""
import os
import re

import cv2
import numpy as np
import pytest

from ms_osr.data import datasets as DS
from ms_osr.data import degradations as D
from ms_osr.data.io import ImageReadError, write_image
from ms_osr.data.transforms import SizeMismatchError, dihedral


def _write(path, img):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, cv2.cvtColor(D.to_uint8(img), cv2.COLOR_RGB2BGR))


def _img(seed, h=40, w=48):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


@pytest.fixture
def paired(tmp_path):
    for i in range(5):
        gt = _img(i)
        _write(str(tmp_path / "clean" / f"im{i}.png"), gt)
        _write(str(tmp_path / "deg" / f"im{i}.png"), np.clip(gt + 0.1, 0, 1))
    return tmp_path


def test_paired_folder_and_list(paired):
    src = DS.build_source({"type": "paired_folder", "degraded": str(paired / "deg"), "clean": str(paired / "clean")})
    assert len(src) == 5
    lq, gt, name = src.load(2, np.random.default_rng(0))
    assert name == "im2.png" and lq.shape == gt.shape == (40, 48, 3)
    assert np.allclose(gt, D.to_uint8(_img(2)) / 255.0, atol=1e-6)
    lst = paired / "pairs.txt"
    lst.write_text("# degraded clean\n" + "".join(f"deg/im{i}.png clean/im{i}.png\n" for i in range(3)))
    src2 = DS.build_source({"type": "list_file", "list": str(lst)})
    assert len(src2) == 3 and np.array_equal(src2.load(1, None)[1], src.load(1, None)[1])
    lst.write_text("deg/im0.png\n")
    with pytest.raises(DS.DatasetError, match=r"pairs.txt:1"):
        DS.read_list_file(str(lst))


def test_missing_clean_and_size_mismatch(paired):
    _write(str(paired / "deg" / "orphan.png"), _img(9))
    with pytest.raises(DS.DatasetError, match="orphan.png: no clean image"):
        DS.match_pairs(str(paired / "deg"), str(paired / "clean"))
    with pytest.warns(UserWarning, match="orphan"):
        assert len(DS.match_pairs(str(paired / "deg"), str(paired / "clean"), skip_bad=True)) == 5
    os.remove(paired / "deg" / "orphan.png")
    _write(str(paired / "deg" / "im1.png"), _img(1, 40, 50))
    src = DS.build_source({"type": "paired_folder", "degraded": str(paired / "deg"), "clean": str(paired / "clean")})
    with pytest.raises(SizeMismatchError, match=r"im1.png: size 50x40 differs .*im1.png \(48x40\)"):
        src.load(1, None)


def test_bad_file_error_or_skip(paired):
    (paired / "deg" / "im3.png").write_bytes(b"not an image")
    src = DS.build_source({"type": "paired_folder", "degraded": str(paired / "deg"), "clean": str(paired / "clean")})
    view = DS.EpochView(src, seed=0, epoch=0, batch=5, patch_size=16)
    pos = view.indices.index(3)
    with pytest.raises(ImageReadError, match="im3.png"):
        view[pos]
    view = DS.EpochView(src, seed=0, epoch=0, batch=5, patch_size=16, skip_bad=True)
    with pytest.warns(UserWarning, match="im3.png"):
        lq, gt = view[pos]
    assert lq.shape == (3, 16, 16)


def test_all_in_one_layout(tmp_path):
    root = tmp_path / "Train"
    for i in range(4):
        _write(str(root / "Denoise" / f"{i:03d}.bmp"), _img(i))
    for n in (1, 2):
        _write(str(root / "Derain" / "rainy" / f"rain-{n}.png"), _img(10 + n))
        _write(str(root / "Derain" / "gt" / f"norain-{n}.png"), _img(20 + n))
    for sid in ("0001", "0002"):
        _write(str(root / "Dehaze" / "original" / f"{sid}.jpg"), _img(int(sid)))
        for beta in ("0.8_0.2", "0.9_0.1"):
            _write(str(root / "Dehaze" / "hazy" / "part1" / f"{sid}_{beta}.jpg"), _img(int(sid) + 5))
    for n in range(3):
        _write(str(root / "Deblur" / "blur" / f"b{n}.png"), _img(30 + n))
        _write(str(root / "Deblur" / "sharp" / f"b{n}.png"), _img(40 + n))
        _write(str(root / "Enhance" / "low" / f"{n}.png"), _img(50 + n))
        _write(str(root / "Enhance" / "gt" / f"{n}.png"), _img(60 + n))
    src = DS.build_source({"type": "all_in_one", "root": str(root)})
    # 3 sigmas x 4 + rain 2 x 120 + haze 4
    assert len(src) == 12 + 240 + 4
    names = {src.name(i) for i in range(len(src))}
    assert "rain-1.png" in names and "0002_0.9_0.1.jpg" in names and "000__gaussian_noise" in names
    rain = [p for p, _ in src.parts if p.label == "derain"][0]
    assert [os.path.basename(g) for _, g in rain.pairs] == ["norain-1.png", "norain-2.png"]
    haze = [p for p, _ in src.parts if p.label == "dehaze"][0]
    assert all(os.path.basename(g) == os.path.basename(lq)[:4] + ".jpg" for lq, g in haze.pairs)
    # noisy sample really has sigma-15 noise on uint8
    lq, gt, _ = src.load(0, np.random.default_rng(0), crop=None)
    assert 10 / 255 < (lq - gt).std() < 20 / 255
    five = DS.build_source({"type": "all_in_one", "root": str(root),
                            "tasks": ["denoise_25", "derain", "dehaze", "deblur", "lowlight"],
                            "repeats": {"derain": 2}})
    assert len(five) == 4 + 4 + 4 + 15 + 60


def test_test_set_layouts(tmp_path):
    for n in (1, 2):
        _write(str(tmp_path / "Rain100L" / "input" / f"rain-{n}.png"), _img(n))
        _write(str(tmp_path / "Rain100L" / "target" / f"norain-{n}.png"), _img(n + 1))
        _write(str(tmp_path / "sots" / "input" / f"000{n}_0.8_0.2.jpg"), _img(n))
        _write(str(tmp_path / "sots" / "target" / f"000{n}.png"), _img(n))
        _write(str(tmp_path / "lol" / "eval15" / "low" / f"{n}.png"), _img(n))
        _write(str(tmp_path / "lol" / "eval15" / "high" / f"{n}.png"), _img(n))
        for seq in ("GOPR0384_11_00", "GOPR0385_11_01"):
            _write(str(tmp_path / "gopro" / "test" / seq / "blur" / f"{n:06d}.png"), _img(n))
            _write(str(tmp_path / "gopro" / "test" / seq / "sharp" / f"{n:06d}.png"), _img(n))
        _write(str(tmp_path / "bsd68" / f"{n}.png"), _img(n))
    assert len(DS.build_source({"type": "rain100l", "root": str(tmp_path / "Rain100L")}, train=False)) == 2
    assert len(DS.build_source({"type": "sots_outdoor", "root": str(tmp_path / "sots")}, train=False)) == 2
    assert len(DS.build_source({"type": "lol", "root": str(tmp_path / "lol")}, train=False)) == 2
    gopro = DS.build_source({"type": "gopro", "root": str(tmp_path / "gopro")}, train=False)
    assert len(gopro) == 4 and all(os.path.dirname(os.path.dirname(a)) == os.path.dirname(os.path.dirname(b))
                                   for a, b in gopro.pairs)
    bsd = DS.build_source({"type": "bsd68", "root": str(tmp_path / "bsd68"), "sigma": 50}, train=False)
    a, b = bsd.load(1, np.random.default_rng(5)), bsd.load(1, np.random.default_rng(6))
    assert np.array_equal(a[0], b[0])  # test noise fixed by seed, not by the caller's rng
    with pytest.raises(DS.DatasetError, match="no input/rainy/rain"):
        DS.build_source({"type": "rain100l", "root": str(tmp_path / "lol")}, train=False)


def test_synthetic_folder_and_skimage_split(tmp_path):
    for i in range(3):
        _write(str(tmp_path / "clean" / f"{i}.png"), _img(i, 64, 64))
    src = DS.build_source({"type": "synthetic_folder", "root": str(tmp_path / "clean"),
                           "degradations": ["noise_25", {"name": "haze", "random": True}]})
    assert len(src) == 6 and src.name(3) == "1__haze"
    train = DS.skimage_sample_names("train")
    held = DS.skimage_sample_names("heldout")
    assert held and len(train) >= 10 and not set(train) & set(held)
    assert [n for n, _ in DS.heldout_sample_images()] == held
    sk = DS.build_source({"type": "skimage_samples", "split": "train", "degradations": ["rain"]})
    assert len(sk) == len(train)
    assert not {sk.name(i).split("__")[0] for i in range(len(sk))} & set(held)
    with pytest.raises(DS.DatasetError, match="never trained on"):
        DS.build_source({"type": "skimage_samples", "split": "heldout", "degradations": ["rain"]}, train=True)
    val = DS.build_source({"type": "skimage_samples", "split": "heldout", "degradations": ["noise_15"]},
                          train=False)
    ev = DS.EvalView(val, crop=64)
    a, b = ev.get(0), ev.get(0)
    assert a[0].shape == (64, 64, 3) and np.array_equal(a[0], b[0])


def test_dihedral_modes():
    x = np.arange(2 * 3 * 1).reshape(2, 3, 1)
    outs = {dihedral(x, m).tobytes() + bytes(dihedral(x, m).shape) for m in range(8)}
    assert len(outs) == 8  # all distinct


def test_epoch_view_determinism_and_sharding(tmp_path):
    for i in range(6):
        _write(str(tmp_path / "clean" / f"{i}.png"), _img(i, 32, 32))
    src = DS.build_source({"type": "synthetic_folder", "root": str(tmp_path / "clean"), "degradations": ["noise_25"]})
    full = DS.EpochView(src, seed=3, epoch=1, batch=4, patch_size=16)
    r0 = DS.EpochView(src, seed=3, epoch=1, batch=2, rank=0, world=2, patch_size=16)
    r1 = DS.EpochView(src, seed=3, epoch=1, batch=2, rank=1, world=2, patch_size=16)
    assert full.indices == r0.indices[:2] + r1.indices[:2]
    assert len(full) == 4  # drop_remainder: 6 // 4 = 1 step
    a, b = full[1], r0[1]
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    other = DS.EpochView(src, seed=3, epoch=2, batch=4, patch_size=16)
    assert other.indices != full.indices or not np.array_equal(other[0][0], full[0][0])
    # resume mid-epoch: start_step skips exactly the consumed steps
    v = DS.EpochView(src, seed=0, epoch=0, batch=2, patch_size=16)
    vr = DS.EpochView(src, seed=0, epoch=0, batch=2, patch_size=16, start_step=1)
    assert v.indices[2:] == vr.indices and np.array_equal(v[2][0], vr[0][0])


def test_generator_dataset_workers_deterministic(tmp_path):
    for i in range(8):
        _write(str(tmp_path / "clean" / f"{i}.png"), _img(i, 32, 32))
    src = DS.build_source({"type": "synthetic_folder", "root": str(tmp_path / "clean"),
                           "degradations": ["noise_15", "rain"]})
    batches = []
    for workers in (1, 2):
        view = DS.EpochView(src, seed=1, epoch=0, batch=4, patch_size=16)
        dset = DS.make_generator_dataset(view, 4, num_workers=workers)
        batches.append([b for b in dset.create_tuple_iterator(output_numpy=True, num_epochs=1)])
    assert len(batches[0]) == 4 and batches[0][0][0].shape == (4, 3, 16, 16)
    for x, y in zip(*batches):
        assert np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])


def test_degradation_context_makes_haze_vary_slowly_across_a_crop():
    """With ``context`` the haze of a crop is cut from a window 4x wider, so its veil spans a quarter of the
    depth range instead of all of it; the degraded and clean crops are cut from the same window."""
    flat = np.full((512, 512, 3), 0.3, np.float32)
    spec = [{"name": "haze", "beta": 2.0, "airlight": 0.9, "layout": "gradient", "near": 0.0}]
    spans = {}
    for context in (1, 4):
        src = DS.SyntheticPairs([("flat", flat)], spec, context=context)
        veil = []
        for seed in range(8):
            lq, gt, _ = src.load(0, np.random.default_rng(seed), crop=32)
            assert lq.shape == gt.shape == (32, 32, 3)
            assert np.allclose(gt, 0.3)
            veil.append(float(lq[..., 0].max() - lq[..., 0].min()))
        spans[context] = float(np.mean(veil))
    assert spans[4] < 0.5 * spans[1], spans
    # alignment: on a textured photo with the identity degradation, the cut crops must be the same window
    textured = _img(3, 256, 256)
    src = DS.SyntheticPairs([("tex", textured)], ["identity"], context=4)
    lq, gt, _ = src.load(0, np.random.default_rng(0), crop=32)
    assert lq.shape == (32, 32, 3) and np.array_equal(lq, gt) and gt.std() > 0.1
    with pytest.raises(DS.DatasetError, match="context must be an integer >= 1"):
        DS.SyntheticPairs([("flat", flat)], spec, context=0)


def test_texture_crops_prefer_fine_structure_in_training_only():
    """``texture_crops: k`` keeps the most textured of k random crops: on a photo that is flat on its left half
    and textured on its right, crops land on the texture far more often than one random crop does; one
    candidate draws exactly the plain random crop, validation (fixed seed) never selects, and a count that
    is not an integer >= 1 is refused with one line."""
    img = np.full((96, 192, 3), 0.5, np.float32)
    img[:, 96:] = _img(7, 96, 96)
    plain = DS.SyntheticPairs([("half", img)], ["identity"])
    picky = DS.SyntheticPairs([("half", img)], ["identity"], texture_crops=4)

    def share_textured(src, fixed=None):
        src.fixed_seed = fixed
        crops = [src.load(0, np.random.default_rng(seed), crop=32)[1] for seed in range(60)]
        return np.mean([c.std() > 0.05 for c in crops]), crops

    plain_share, plain_crops = share_textured(plain)
    picky_share, _ = share_textured(picky)
    assert plain_share < 0.75 and picky_share > 0.95, (plain_share, picky_share)
    one = DS.SyntheticPairs([("half", img)], ["identity"], texture_crops=1)
    assert all(np.array_equal(a, b) for a, b in zip(share_textured(one)[1], plain_crops))
    assert share_textured(picky, fixed=0)[0] < 0.75  # validation: the crop is not chosen
    for bad in (0, 2.5, "3", True):
        with pytest.raises(DS.DatasetError, match="texture_crops must be an integer >= 1"):
            DS.SyntheticPairs([("half", img)], ["identity"], texture_crops=bad)


def test_smooth_crop_spec_keeps_the_flattest_crop_for_that_spec_only():
    """``{name: identity, crop: smooth}`` keeps the least textured of the ``texture_crops`` candidates for that
    spec while the other specs keep the most textured; the key never reaches the degradation, its name is
    the degradation's, and a value other than textured/smooth is refused with one line naming it."""
    img = np.full((96, 192, 3), 0.5, np.float32)
    img[:, 96:] = _img(7, 96, 96)
    src = DS.SyntheticPairs([("half", img)], ["identity", {"name": "identity", "crop": "smooth"},
                                              {"name": "identity", "crop": "textured"}], texture_crops=4)
    assert [src.degradation(i) for i in range(3)] == ["identity"] * 3

    def share_textured(index):
        return np.mean([src.load(index, np.random.default_rng(seed), crop=32)[1].std() > 0.05
                        for seed in range(60)])

    assert share_textured(0) > 0.95 and share_textured(2) > 0.95
    assert share_textured(1) < 0.2  # one random crop: about 0.6
    with pytest.raises(DS.DatasetError, match="'identity': crop must be 'textured' or 'smooth', got 'flat'"):
        DS.SyntheticPairs([("half", img)], [{"name": "identity", "crop": "flat"}])


def test_recolour_varies_the_palette_of_training_crops_only():
    """``recolour`` permutes channels and scales saturation of the clean crop before it is degraded: the pair
    stays aligned (identity gives lq == gt), luminance structure is kept, the palettes vary (some grey), and
    validation (fixed seed) never sees it."""
    rgb = np.stack([np.full((64, 64), v, np.float32) for v in (0.8, 0.4, 0.1)], axis=-1)
    rgb[:, :32] *= 0.5  # an edge the recolouring must keep
    train = DS.SyntheticPairs([("warm", rgb)], ["identity"], recolour=1.0)
    firsts, greys = set(), 0
    for seed in range(40):
        lq, gt, _ = train.load(0, np.random.default_rng(seed), crop=32)
        assert np.array_equal(lq, gt)
        firsts.add(round(float(gt[0, 0].argmax())))
        greys += bool(np.ptp(gt[0, 0]) < 1e-6)
    assert firsts == {0, 1, 2}, firsts  # the brightest channel moves
    assert 1 <= greys <= 15, greys
    edge = train.load(0, np.random.default_rng(3))[1]
    assert edge[:, :32].mean() < edge[:, 32:].mean()
    val = DS.SyntheticPairs([("warm", rgb)], ["identity"], recolour=1.0, fixed_seed=0)
    assert np.array_equal(val.load(0, np.random.default_rng(0))[1], rgb)
    off = DS.SyntheticPairs([("warm", rgb)], ["identity"])
    for seed in range(5):  # without recolour the palette is the photo's
        gt = off.load(0, np.random.default_rng(seed), crop=32)[1]
        assert np.all(gt[..., 0] > gt[..., 1]) and np.all(gt[..., 1] > gt[..., 2])
    with pytest.raises(DS.DatasetError, match="recolour is a probability"):
        DS.SyntheticPairs([("warm", rgb)], ["identity"], recolour=1.5)


def test_a_misspelt_key_of_a_synthesising_source_is_refused():
    """A key the source does not read (``texture_crop`` for ``texture_crops``) is one line naming it and the
    known keys, not a run that silently trains without the option; every key the sources read is known."""
    cfg = {"type": "photos", "split": "train", "degradations": ["rain"], "texture_crop": 3}
    with pytest.raises(DS.DatasetError, match=r"data source \(photos\): unknown key\(s\) texture_crop "
                                              r"\(did you mean 'texture_crops'\?\); known: .*texture_crops"):
        DS.build_source(cfg)
    with pytest.raises(DS.DatasetError, match=r"\(synthetic_folder\): unknown key\(s\) crop_scale"):
        DS.build_source({"type": "synthetic_folder", "root": ".", "degradations": ["rain"], "crop_scale": [0.5, 1]})
    DS.check_source_keys({"type": "photos", "split": ["train", "extra"], "degradations": ["rain"], "repeat": 4,
                          "crop_scale": [0.2, 1.0], "photometric": 1.0, "recolour": 0.5, "context": 4,
                          "texture_crops": 3, "max_side": 1024, "seed": 0, "crop": 128, "max_items": 8})


def test_every_source_type_refuses_a_key_it_does_not_read(tmp_path):
    """Upstream layouts, test sets and concat parts are checked too, with the closest known key; data.root fills
    `root`/`image_root` only where the type reads them, so a synthetic folder under data.root is not refused."""
    from ms_osr.data.layouts import prepare_data_config

    cases = [({"type": "griddehazenet", "root": ".", "listname": "a.txt"}, r"\(griddehazenet\): unknown key\(s\) "
              r"listname \(did you mean 'list_name'\?\)"),
             ({"type": "paired_folder", "degraded": "a", "clean": "b", "anything": 1}, r"unknown key\(s\) anything;"),
             ({"type": "concat", "parts": [{"type": "lol", "root": ".", "splt": "test"}]},
              r"data source.parts\[0\] \(lol\): unknown key\(s\) splt \(did you mean 'split'\?\)"),
             ({"type": "photo"}, r"unknown data type 'photo' \(did you mean 'photos'\?\); choose from .*sid")]
    for cfg, message in cases:
        with pytest.raises(DS.DatasetError, match=message):
            DS.build_source(cfg)
    (tmp_path / "imgs").mkdir()
    write_image(str(tmp_path / "imgs" / "a.png"), np.full((16, 16, 3), 0.5, np.float32))
    data = prepare_data_config({"root": str(tmp_path), "skip_bad": True,
                                "train": {"type": "synthetic_folder", "root": "imgs", "degradations": ["rain"]},
                                "val": {"type": "list_pair", "input_list": "in.txt", "gt_list": "gt.txt"}})
    assert data["train"] == {"type": "synthetic_folder", "root": str(tmp_path / "imgs"), "degradations": ["rain"],
                             "skip_bad": True}
    assert data["val"]["image_root"] == str(tmp_path) and "root" not in data["val"]
    assert len(DS.build_source(data["train"])) == 1


def test_every_source_key_is_documented():
    """docs/training.md's source table names every key a type reads, and its paragraph the keys all types share."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "docs", "training.md"), encoding="utf-8").read()
    table = text[text.index("### Data sources"):]
    documented = {}
    for line in table.splitlines():
        if line.startswith("| `"):
            kinds, keys = line.split(" | ")[:2]
            for kind in re.findall(r"`(\w+)`", kinds):
                documented[kind] = set(re.findall(r"`(\w+)", keys))
    shared = DS._COMMON_KEYS | DS._SYNTHESIS_KEYS
    assert set(DS.SOURCE_KEYS) <= set(documented)
    assert {kind: sorted(keys - shared - documented[kind]) for kind, keys in DS.SOURCE_KEYS.items()
            if keys - shared - documented[kind]} == {}
    paragraph = table[table.index("Every type also takes"):table.index("```")]
    assert sorted(k for k in shared - {"type", "degradations"} if f"`{k}`" not in paragraph) == []

"""tools/haze_bounds.py: the reference points it reports do what they claim on a synthetic hazed image."""
import numpy as np
import skimage.data

from ms_osr.data.degradations import haze
from ms_osr.metrics import calculate_psnr
from scripts import load_script

tool = load_script("tools/haze_bounds.py")


def _clean():
    return skimage.data.astronaut()[::2, ::2].astype(np.float32) / 255.0


def test_colour_map_fit_undoes_a_global_affine_map_exactly():
    clean = _clean()
    m = np.array([[0.6, 0.1, 0.0], [0.0, 0.7, 0.05], [0.02, 0.0, 0.5]])
    veiled = np.clip(clean @ m.T + np.array([0.3, 0.25, 0.35]), 0, 1)  # an image-wide haze: t constant
    np.testing.assert_allclose(tool.colour_map_fit(veiled, clean), clean, atol=1e-5)


def test_dark_channel_prior_removes_most_of_a_haze():
    clean = _clean()
    hazy = haze(clean, beta=1.2, airlight=0.9, rng=0, layout="gradient")
    before = calculate_psnr(hazy, clean, convention="aio")
    after = calculate_psnr(tool.dark_channel_dehaze(hazy), clean, convention="aio")
    assert after > before + 3.0, (before, after)
    t = np.full(clean.shape[:2], 0.4)  # and the guided filter keeps a constant map constant
    np.testing.assert_allclose(tool.guided_filter(clean.mean(axis=2).astype(np.float64), t), t, atol=1e-9)


def test_rain_reference_points_on_a_stand_in_corpus(tmp_path, capsys):
    """``--degradation rain``: the references (no true inverse) on every rain input, then light/heavy gains;
    the least-squares colour map never loses to the input (the identity map is one of its candidates)."""
    from ms_osr.data.corpus import read_manifest, stored_name
    from ms_osr.data.io import write_image

    for i, r in enumerate(x for x in read_manifest() if x["split"] in ("test", "train")):
        path = tmp_path / "photos" / stored_name(r)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(str(path), np.random.default_rng(i).random((40, 48, 3)).astype(np.float32))
    tool.main(["--root", str(tmp_path / "photos"), "--seeds", "0", "--crop", "32", "--degradation", "rain",
               "--estimate", "train", "--estimate-crops", "2"])
    out = capsys.readouterr().out
    assert "true t, A" not in out and "dark channel" in out
    assert len([line for line in out.splitlines() if line.strip().startswith("estimated map")]) == 2
    gains = [line.split() for line in out.splitlines() if line.strip().startswith("colour map") and "light" in line]
    assert len(gains) == 1
    light, heavy = float(gains[0][3]), float(gains[0][5])
    assert light >= 0.0 and heavy >= 0.0, out


def test_channel_map_fit_undoes_a_per_channel_gain_and_offset_exactly():
    clean = _clean()
    veiled = clean * np.array([0.5, 0.6, 0.4]) + np.array([0.4, 0.3, 0.45])
    np.testing.assert_allclose(tool.channel_map_fit(veiled, clean), clean, atol=1e-6)


def test_estimator_learns_a_veil_whose_strength_the_statistics_show():
    """Veils of random strength on crops of one photo's left part: the fitted estimator removes most of an
    unseen veil on its right part, and changes that part less than a light veil would when it is clean (a
    linear read-out is least exact near the identity: the light-input harm measured on the benchmark)."""
    rng = np.random.default_rng(0)
    train_img = skimage.data.chelsea().astype(np.float32) / 255.0

    def veil(img, t):
        return (img * t + 0.85 * (1 - t)).astype(np.float32)

    pairs = []
    for _ in range(60):
        y, x = rng.integers(0, 150), rng.integers(0, 170)  # crops within columns 0-297
        crop = train_img[y:y + 128, x:x + 128]
        pairs += [(veil(crop, rng.uniform(0.3, 1.0)), crop), (crop, crop)]
    est = tool.ChannelMapEstimator(ridge=1e-3).fit(pairs)
    clean = train_img[100:228, 310:438]
    hazy = veil(clean, 0.5)
    before = calculate_psnr(hazy, clean, convention="aio")
    after = calculate_psnr(est.apply(hazy), clean, convention="aio")
    assert after > before + 6.0, (before, after)
    light = calculate_psnr(veil(clean, 0.7), clean, convention="aio")
    assert calculate_psnr(est.apply(clean), clean, convention="aio") > light + 3.0

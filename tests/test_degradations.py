"""Each degradation checked against its definition, plus seeding and the registry."""
import cv2
import numpy as np
import pytest

from ms_osr.data import degradations as D


@pytest.fixture
def img():
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.random((96, 128, 3)).astype(np.float32), (0, 0), 3)
    base = (base - base.min()) / (base.max() - base.min())
    return (0.15 + 0.7 * base).astype(np.float32)  # away from 0/1 so clipping is rare


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_noise_std_matches_sigma(sigma):
    flat = np.full((256, 256, 3), 0.5, np.float32)
    noisy = D.gaussian_noise(flat, sigma, rng=0)
    diff = noisy.astype(np.float64) - D.to_uint8(flat) / 255.0
    # uint8 truncation adds ~U(-1,0)/255: mean -0.5/255, variance +1/12 (0-255 units)
    expected_std = np.sqrt(sigma ** 2 + 1 / 12.0) / 255.0
    assert abs(diff.std() - expected_std) / expected_std < 0.02
    assert abs(diff.mean() + 0.5 / 255.0) < 0.3 / 255.0
    assert noisy.dtype == np.float32
    # quantised like the papers: every value is k/255
    assert np.allclose(noisy * 255.0, np.round(noisy * 255.0), atol=1e-4)


def test_noise_matches_paper_formula(img):
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    clean = D.to_uint8(img)
    ref = np.clip(clean + rng_b.standard_normal(clean.shape) * 25, 0, 255).astype(np.uint8)
    out = D.gaussian_noise(img, 25, rng=rng_a)
    assert np.array_equal(D.to_uint8(out), ref)


def test_seeds_reproducible(img):
    for name in D.list_degradations():
        a = D.degrade(img, name, rng=123)
        b = D.degrade(img, name, rng=np.random.default_rng(123))
        assert np.array_equal(a, b), name
        assert a.shape == img.shape and a.dtype == np.float32, name
        assert a.min() >= 0 and a.max() <= 1, name
    stochastic = ["gaussian_noise", "rain", "haze"]
    for name in stochastic:
        assert not np.array_equal(D.degrade(img, name, rng=1), D.degrade(img, name, rng=2)), name


def test_haze_equation_exact(img):
    t = np.random.default_rng(3).uniform(0.2, 1.0, img.shape[:2])
    a = 0.85
    out = D.haze_model(img, t, a)
    assert np.allclose(out, img * t[:, :, None] + a * (1 - t[:, :, None]), atol=1e-6)
    # haze(): t = exp(-beta d) with a given depth
    depth = np.random.default_rng(4).random(img.shape[:2]).astype(np.float32)
    out = D.haze(img, beta=1.5, airlight=[0.9, 0.8, 0.7], depth=depth)
    tt = np.exp(-1.5 * depth.astype(np.float64))[:, :, None]
    ref = img * tt + np.array([0.9, 0.8, 0.7]) * (1 - tt)
    assert np.allclose(out, ref, atol=1e-6)


def test_depth_maps():
    d = D.motorcycle_depth()
    assert d.shape == (500, 741) and np.isfinite(d).all() and d.min() == 0 and d.max() == 1
    p = D.pseudo_depth((64, 80), rng=0)
    assert p.shape == (64, 80) and p.min() == 0 and p.max() == pytest.approx(1)
    assert p[:8].mean() > p[-8:].mean()  # far at the top
    assert np.abs(np.diff(p, axis=1)).max() < 0.1  # smooth


@pytest.mark.parametrize("name,params", [("motion_blur", {"length": 11, "angle": 30}),
                                         ("defocus_blur", {"radius": 3.5}),
                                         ("gaussian_blur", {"sigma": 2.0})])
def test_blur_preserves_mean(img, name, params):
    out = D.degrade(img, name, **params)
    assert abs(out.mean() - img.mean()) < 2e-3
    assert out.std() < img.std()
    const = np.full_like(img, 0.4)
    assert np.allclose(D.degrade(const, name, **params), 0.4, atol=1e-6)


def test_kernels():
    for length, angle in [(9, 0), (15, 45), (20, 90), (7, 123)]:
        k = D.motion_kernel(length, angle)
        assert k.sum() == pytest.approx(1, abs=1e-5) and k.shape[0] % 2 == 1 and k.min() >= 0
    k = D.motion_kernel(9, 0)
    assert np.allclose(k[k.shape[0] // 2].sum(), 1, atol=1e-5)  # horizontal: one row
    k = D.motion_kernel(9, 90)
    assert np.allclose(k[:, k.shape[1] // 2].sum(), 1, atol=1e-5)  # vertical: one column
    d = D.disk_kernel(4)
    assert d.sum() == pytest.approx(1, abs=1e-5) and np.allclose(d, d.T) and np.allclose(d, d[::-1])


def test_jpeg_equals_cv2_round_trip(img):
    u8 = D.to_uint8(img)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 25])
    ref = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    assert np.array_equal(D.jpeg(img, quality=25), ref)


def test_bicubic_equals_cv2(img):
    small = cv2.resize(img, (64, 48), interpolation=cv2.INTER_CUBIC)
    ref = np.clip(cv2.resize(small, (128, 96), interpolation=cv2.INTER_CUBIC), 0, 1)
    assert np.allclose(D.bicubic(img, scale=2), ref)


def test_low_light_definition(img):
    out = D.low_light(img, gamma=2.2, gain=0.4, noise_sigma=0)
    assert np.allclose(out, 0.4 * img.astype(np.float64) ** 2.2, atol=1e-6)
    noisy = D.low_light(img, gamma=2.2, gain=0.4, noise_sigma=10, rng=0)
    assert abs((noisy - out).std() - 10 / 255) < 0.1 * 10 / 255


def test_rain_streaks(img):
    assert np.array_equal(D.rain(img, density=0.0, rng=0), img)
    light = D.rain(img, density=0.005, rng=0)
    heavy = D.rain(img, density=0.05, rng=0)
    assert (light >= img - 1e-7).all() and (heavy >= img - 1e-7).all()
    assert (heavy - img).mean() > (light - img).mean() > 0
    # streak direction: intensity varies least along the streak
    for angle in (0.0, -90.0, -45.0):
        layer = D.rain_layer((128, 128), density=0.01, length=25, angle=angle, rng=5).astype(np.float64)
        gy, gx = np.gradient(layer)
        jxx, jyy, jxy = (gx * gx).sum(), (gy * gy).sum(), (gx * gy).sum()
        # direction of least gradient energy (image coords: y down)
        theta = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy)) + 90.0
        expected = (-angle) % 180.0  # y-down flips the sign
        err = min(abs(theta % 180 - expected), 180 - abs(theta % 180 - expected))
        assert err < 10, (angle, theta)


def test_registry_and_composition(img):
    names = D.list_degradations()
    for required in ["gaussian_noise", "noise_15", "noise_25", "noise_50", "rain", "haze", "motion_blur",
                     "defocus_blur", "low_light", "jpeg", "bicubic", "bicubic_x4"]:
        assert required in names
    with pytest.raises(KeyError, match="unknown degradation"):
        D.degrade(img, "nope")
    assert np.array_equal(D.degrade(img, "noise_50", rng=0), D.gaussian_noise(img, 50, rng=0))
    out1, specs1 = D.random_composition(img, rng=9)
    out2, specs2 = D.random_composition(img, rng=9)
    assert specs1 == specs2 and np.array_equal(out1, out2) and 1 <= len(specs1) <= 3
    comp = D.compose(img, [{"name": "haze", "beta": 1.0}, "jpeg"], rng=0)
    assert np.array_equal(comp, D.jpeg(D.haze(img, beta=1.0, rng=np.random.default_rng(0))))
    u8 = D.degrade(D.to_uint8(img), "motion_blur")
    assert u8.dtype == np.float32


# ------------------------------------------------------------------ wide synthesis (rain, haze)
def test_rain_styles_blends_and_layers(img):
    for style in D.RAIN_STYLES:
        layer = D.RAIN_STYLES[style]((96, 128), density=0.02, length=20, angle=-90.0, width=1, rng=3)
        assert layer.shape == (96, 128) and layer.max() == pytest.approx(1.0) and layer.min() >= 0
        # vertical streaks: the layer varies far more across columns than along them
        assert np.abs(np.diff(layer, axis=1)).mean() > 2 * np.abs(np.diff(layer, axis=0)).mean(), style
    add = D.rain(img, intensity=0.9, blend="add", rng=5)
    screen = D.rain(img, intensity=0.9, blend="screen", rng=5)
    s = 0.9 * D.rain_layer(img.shape[:2], 0.02, 20, -75.0, 1, np.random.default_rng(5))[:, :, None]
    assert np.allclose(add, np.clip(img + s, 0, 1), atol=1e-6)
    assert np.allclose(screen, 1 - (1 - img) * (1 - s), atol=1e-6)
    assert (screen <= add + 1e-6).all()  # screen never brightens more than adding
    two = D.rain(img, intensity=0.9, layers=2, rng=5)
    assert (two >= add - 1e-6).mean() > 0.99  # the second layer only adds streaks
    with pytest.raises(ValueError, match="style"):
        D.rain(img, style="snow")


@pytest.mark.parametrize("layout", sorted(D.DEPTH_LAYOUTS))
def test_haze_layouts_follow_the_scattering_model(img, layout):
    depth = D.DEPTH_LAYOUTS[layout](img.shape[:2], np.random.default_rng(2))
    assert depth.shape == img.shape[:2] and depth.min() == pytest.approx(0) and depth.max() == pytest.approx(1)
    out = D.haze(img, beta=1.5, airlight=0.9, layout=layout, near=0.2, rng=2)
    t = np.exp(-1.5 * (0.2 + 0.8 * depth))[:, :, None]
    assert np.allclose(out, np.clip(img * t + 0.9 * (1 - t), 0, 1), atol=1e-5)


def test_gradient_depth_points_in_any_direction():
    dirs = set()
    for seed in range(40):
        d = D.gradient_depth((32, 32), seed)
        dirs.add((int(np.sign(np.round(d[:, -1].mean() - d[:, 0].mean(), 3))),
                  int(np.sign(np.round(d[-1].mean() - d[0].mean(), 3)))))
    assert dirs == {(-1, -1), (-1, 1), (1, -1), (1, 1)}  # the far side can be in any quadrant


def test_samplers_cover_the_documented_ranges():
    rng = np.random.default_rng(0)
    rains = [D.random_params("rain", rng) for _ in range(400)]
    angles = [p["angle"] for p in rains]
    assert min(angles) < -125 and max(angles) > -55
    assert {p["style"] for p in rains} == set(D.RAIN_STYLES) and {p["blend"] for p in rains} == {"add", "screen"}
    assert {p["layers"] for p in rains} == {1, 2} and {p["width"] for p in rains} == {1, 2, 3}
    assert min(p["length"] for p in rains) < 10 and max(p["length"] for p in rains) > 55
    hazes = [D.random_params("haze", rng) for _ in range(400)]
    assert {p["layout"] for p in hazes} == set(D.DEPTH_LAYOUTS)
    airlights = np.array([p["airlight"] for p in hazes])
    assert airlights.min() >= 0.6 and airlights.max() <= 1.0 and np.median(airlights) > 0.8
    sigmas = [D.random_params("gaussian_noise", rng)["sigma"] for _ in range(400)]
    assert 5 <= min(sigmas) < 8 and 52 < max(sigmas) <= 55

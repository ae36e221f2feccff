"""Degradation synthesis: noise, rain, haze, blur, low light, JPEG, resampling.

Every function takes an HxWx3 RGB image (float in [0, 1] or uint8) and returns float32 in
[0, 1].  Randomness only comes from the ``rng`` argument (a ``np.random.Generator``, an int
seed, or ``None`` for a fresh generator), so a degradation is reproducible from its seed.

The registry :data:`DEGRADATIONS` maps names to :class:`Degradation` entries; use
``degrade(img, name, rng, **params)`` to apply one with its defaults overridden, and
``random_params(name, rng)`` / ``random_composition(img, rng)`` for random training mixes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .io import to_uint8  # also D.to_uint8: the papers add noise to uint8 images

RngLike = Union[np.random.Generator, int, None]


def as_rng(rng: RngLike) -> np.random.Generator:
    """Accept a Generator, an int/sequence seed or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8/uint16/float image -> float32 in [0, 1] (HxWx3)."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    return np.clip(img.astype(np.float32), 0.0, 1.0)


# --------------------------------------------------------------------------------------- noise
def gaussian_noise(img: np.ndarray, sigma: float = 25.0, rng: RngLike = None, quantize: bool = True,
                   clip: bool = True) -> np.ndarray:
    """Additive white Gaussian noise with std ``sigma`` in 0-255 units.

    With ``quantize`` (default) this is exactly the PromptIR/AirNet/HAIR recipe: the clean image
    as uint8, ``+ randn * sigma``, clipped to [0, 255] and cast to uint8 (truncation).  Without it
    the noise is added in float and only clipped.
    """
    rng = as_rng(rng)
    if quantize:
        base = to_uint8(to_float(img) if img.dtype != np.uint8 else img).astype(np.float64)
        noisy = base + rng.standard_normal(base.shape) * float(sigma)
        return (np.clip(noisy, 0, 255).astype(np.uint8)).astype(np.float32) / 255.0
    x = to_float(img).astype(np.float64)
    noisy = x + rng.standard_normal(x.shape) * (float(sigma) / 255.0)
    return (np.clip(noisy, 0.0, 1.0) if clip else noisy).astype(np.float32)


# ---------------------------------------------------------------------------------------- blur
def motion_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised linear motion kernel of ``length`` pixels at ``angle`` degrees (0 = horizontal,
    counter-clockwise in image display).  Odd size, anti-aliased by supersampling, sums to 1."""
    length = max(1, int(round(length)))
    size = length if length % 2 == 1 else length + 1
    if length == 1:
        return np.ones((1, 1), np.float32)
    ss = 8  # supersampling factor for a smooth line
    big = np.zeros((size * ss, size * ss), np.float32)
    c = (size * ss - 1) / 2.0
    theta = math.radians(angle)
    dx, dy = math.cos(theta), -math.sin(theta)  # image y points down
    half = (length * ss - 1) / 2.0
    for t in np.linspace(-half, half, length * ss * 4):
        x, y = int(round(c + t * dx)), int(round(c + t * dy))
        if 0 <= x < big.shape[1] and 0 <= y < big.shape[0]:
            big[y, x] = 1.0
    k = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64)
    return (k / k.sum()).astype(np.float32)


def disk_kernel(radius: float) -> np.ndarray:
    """Normalised anti-aliased disk (defocus / pillbox) kernel of the given radius in pixels."""
    if radius <= 0.5:
        return np.ones((1, 1), np.float32)
    r = int(math.ceil(radius))
    ss = 8
    coords = (np.arange((2 * r + 1) * ss) + 0.5) / ss - (r + 0.5)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    inside = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float64)
    k = inside.reshape(2 * r + 1, ss, 2 * r + 1, ss).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def convolve(img: np.ndarray, kernel: np.ndarray, border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """Correlate each channel with ``kernel`` (normalised kernels keep the mean)."""
    x = to_float(img)
    return np.clip(cv2.filter2D(x, -1, kernel.astype(np.float32), borderType=border), 0.0, 1.0)


def motion_blur(img: np.ndarray, length: int = 15, angle: float = 0.0, rng: RngLike = None) -> np.ndarray:
    """Uniform linear motion blur (``length`` px, ``angle`` degrees)."""
    return convolve(img, motion_kernel(length, angle))


def defocus_blur(img: np.ndarray, radius: float = 3.0, rng: RngLike = None) -> np.ndarray:
    """Out-of-focus (pillbox) blur with the given radius in pixels."""
    return convolve(img, disk_kernel(radius))


def gaussian_blur(img: np.ndarray, sigma: float = 1.5, rng: RngLike = None) -> np.ndarray:
    """Isotropic Gaussian blur (kernel size 2*ceil(3 sigma)+1)."""
    k = 2 * int(math.ceil(3 * sigma)) + 1
    g = cv2.getGaussianKernel(k, sigma).astype(np.float64)
    return convolve(img, (g @ g.T).astype(np.float32))


# ---------------------------------------------------------------------------------------- rain
def rain_layer(shape: Tuple[int, int], density: float = 0.02, length: int = 20, angle: float = -75.0,
               width: int = 1, rng: RngLike = None, blur: float = 0.0) -> np.ndarray:
    """A streak layer in [0, 1], "dots then motion blur": random drops (``density`` = fraction of
    pixels seeding a drop, with random brightness) smeared by a motion kernel of ``length`` at
    ``angle`` (degrees from horizontal; -90/90 = vertical), optionally softened by a Gaussian of
    ``blur`` px (out-of-focus rain).  Rescaled so the brightest streak reaches 1."""
    rng = as_rng(rng)
    h, w = shape
    seeds = (rng.random((h, w)) < density).astype(np.float32) * rng.uniform(0.5, 1.0, (h, w)).astype(np.float32)
    if width > 1:
        seeds = cv2.dilate(seeds, np.ones((width, width), np.uint8))
    streaks = cv2.filter2D(seeds, -1, motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT_101)
    return _soften_and_normalise(streaks, blur)


def rain_lines_layer(shape: Tuple[int, int], density: float = 0.02, length: int = 20, angle: float = -75.0,
                     width: int = 1, rng: RngLike = None, blur: float = 0.0, jitter: float = 5.0) -> np.ndarray:
    """A streak layer in [0, 1] drawn as anti-aliased line segments (the "drawn streaks" kind of
    rain generators): ``density * h * w / length`` segments of length ~``length`` (+-50%) at
    ``angle`` +- ``jitter`` degrees, ``width`` px thick, each with its own brightness."""
    rng = as_rng(rng)
    h, w = shape
    canvas = np.zeros((h, w), np.float32)
    count = int(rng.poisson(max(density, 0.0) * h * w / max(length, 1) * 2.0))
    for _ in range(count):
        ln = float(length) * rng.uniform(0.5, 1.5)
        th = math.radians(angle + rng.uniform(-jitter, jitter))
        x0, y0 = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
        x1, y1 = x0 + ln * math.cos(th), y0 - ln * math.sin(th)
        cv2.line(canvas, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))),
                 float(rng.uniform(0.4, 1.0)), int(width), cv2.LINE_AA)
    return _soften_and_normalise(canvas, blur)


def _soften_and_normalise(layer: np.ndarray, blur: float) -> np.ndarray:
    if blur > 0:
        layer = cv2.GaussianBlur(layer, (0, 0), sigmaX=float(blur))
    layer = np.maximum(layer, 0.0)  # filtering leaves -1e-16 where there is no streak
    peak = float(layer.max())
    return layer / peak if peak > 0 else layer


RAIN_STYLES = {"dots": rain_layer, "lines": rain_lines_layer}


def rain(img: np.ndarray, density: float = 0.02, length: int = 20, angle: float = -75.0, intensity: float = 0.8,
         width: int = 1, rng: RngLike = None, style: str = "dots", blur: float = 0.0, layers: int = 1,
         blend: str = "add") -> np.ndarray:
    """Rain streaks over the image.  ``style`` "dots" (dots then motion blur) or "lines" (drawn
    segments); ``layers`` > 1 adds fainter, shorter layers at nearby angles (depth of rain, as in
    heavy-rain sets); ``blend`` "add" (``clip(J + intensity * S)``) or "screen"
    (``1 - (1 - J)(1 - intensity * S)``, which never saturates highlights)."""
    if style not in RAIN_STYLES:
        raise ValueError(f"rain style '{style}' unknown: choose {', '.join(RAIN_STYLES)}")
    if blend not in ("add", "screen"):
        raise ValueError(f"rain blend '{blend}' unknown: choose add or screen")
    rng = as_rng(rng)
    x = to_float(img)
    total = np.zeros(x.shape[:2], np.float32)
    for k in range(max(1, int(layers))):
        fade = 1.0 if k == 0 else float(rng.uniform(0.3, 0.7))
        layer = RAIN_STYLES[style](x.shape[:2], density, max(3, int(length * (1.0 if k == 0 else fade))),
                                   angle + (0.0 if k == 0 else float(rng.uniform(-8, 8))), width, rng, blur)
        total = np.maximum(total, fade * layer)
    s = intensity * total[:, :, None]
    out = x + s if blend == "add" else 1.0 - (1.0 - x) * (1.0 - s)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _rain_sampler(r: np.random.Generator) -> Dict:
    """Wide rain: streaks within 40 degrees of vertical, 6-60 px long, 1-3 px wide, light drizzle to
    downpour, dot or line style, one or two layers, additive or screen blending."""
    return {"density": float(np.exp(r.uniform(math.log(0.003), math.log(0.06)))),
            "length": int(r.integers(6, 61)), "angle": float(-90.0 + r.uniform(-40, 40)),
            "intensity": float(r.uniform(0.35, 1.0)), "width": int(r.choice([1, 1, 2, 3])),
            "style": str(r.choice(list(RAIN_STYLES))), "blur": float(r.choice([0.0, 0.0, r.uniform(0.3, 1.5)])),
            "layers": int(r.integers(1, 3)), "blend": str(r.choice(["add", "screen"]))}


# ---------------------------------------------------------------------------------------- haze
def haze_model(img: np.ndarray, t: np.ndarray, airlight: Union[float, Sequence[float]] = 0.9) -> np.ndarray:
    """Atmospheric scattering model I = J*t + A*(1 - t) (``t`` HxW or HxWx1, ``A`` scalar or RGB)."""
    x = to_float(img).astype(np.float64)
    t = np.asarray(t, np.float64)
    if t.ndim == 2:
        t = t[:, :, None]
    a = np.asarray(airlight, np.float64).reshape(1, 1, -1)
    return (x * t + a * (1.0 - t)).astype(np.float32)


_DISPARITY_CACHE: Dict[str, np.ndarray] = {}


def motorcycle_depth() -> np.ndarray:
    """Normalised depth in [0, 1] for skimage's stereo_motorcycle (from its bundled disparity map)."""
    if "motorcycle" not in _DISPARITY_CACHE:
        import skimage.data

        path = os.path.join(os.path.dirname(skimage.data.__file__), "motorcycle_disp.npz")
        disp = np.load(path)["arr_0"].astype(np.float64)
        finite = np.isfinite(disp) & (disp > 0)
        fill = np.min(disp[finite])  # unknown disparity -> farthest known depth
        disp = np.where(finite, disp, fill)
        depth = 1.0 / disp
        depth = (depth - depth.min()) / max(depth.max() - depth.min(), 1e-12)
        _DISPARITY_CACHE["motorcycle"] = depth.astype(np.float32)
    return _DISPARITY_CACHE["motorcycle"]


def pseudo_depth(shape: Tuple[int, int], rng: RngLike = None, smoothness: float = 0.25) -> np.ndarray:
    """Smooth pseudo-depth in [0, 1]: far at the top, near at the bottom, plus a low-frequency
    random field (the usual prior for outdoor scenes when no depth map exists)."""
    rng = as_rng(rng)
    h, w = shape
    ramp = np.linspace(1.0, 0.0, h, dtype=np.float64)[:, None] * np.ones((1, w))
    coarse = rng.random((4, 4))
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    depth = (1.0 - smoothness) * ramp + smoothness * field
    depth = cv2.GaussianBlur(depth, (0, 0), sigmaX=max(h, w) / 16.0)
    return ((depth - depth.min()) / max(depth.max() - depth.min(), 1e-12)).astype(np.float32)


def _normalise(d: np.ndarray) -> np.ndarray:
    return ((d - d.min()) / max(float(d.max() - d.min()), 1e-12)).astype(np.float32)


def gradient_depth(shape: Tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """Linear depth ramp in a random direction (the far side can be any edge or corner)."""
    rng = as_rng(rng)
    h, w = shape
    th = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return _normalise(xx * math.cos(th) + yy * math.sin(th))


def radial_depth(shape: Tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """Depth growing (or shrinking) with the distance from a random point: a tunnel or a dome."""
    rng = as_rng(rng)
    h, w = shape
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = _normalise(np.hypot(yy - cy, xx - cx))
    return d if rng.random() < 0.5 else 1.0 - d


def field_depth(shape: Tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """A smooth random field: patchy haze with no global direction."""
    rng = as_rng(rng)
    h, w = shape
    n = int(rng.integers(2, 6))
    return _normalise(cv2.resize(rng.random((n, n)), (w, h), interpolation=cv2.INTER_CUBIC))


def layered_depth(shape: Tuple[int, int], rng: RngLike = None) -> np.ndarray:
    """A few depth planes (foreground, middle ground, background) along a random direction,
    with soft boundaries: objects at distinct distances."""
    rng = as_rng(rng)
    ramp = gradient_depth(shape, rng)
    cuts = np.sort(rng.uniform(0, 1, int(rng.integers(2, 5))))
    levels = np.sort(rng.uniform(0, 1, len(cuts) + 1))
    planes = levels[np.searchsorted(cuts, ramp)].astype(np.float64)
    return _normalise(cv2.GaussianBlur(planes, (0, 0), sigmaX=max(shape) / 40.0))


DEPTH_LAYOUTS = {"pseudo": pseudo_depth, "gradient": gradient_depth, "radial": radial_depth,
                 "field": field_depth, "layers": layered_depth}


def haze(img: np.ndarray, beta: float = 1.2, airlight: Union[float, Sequence[float]] = 0.9,
         depth: Optional[np.ndarray] = None, rng: RngLike = None, layout: str = "pseudo",
         near: float = 0.0) -> np.ndarray:
    """Haze with transmission t = exp(-beta * (near + (1 - near) * d)).  ``depth`` (HxW, any scale;
    resized if needed) defaults to the ``layout`` generator (:data:`DEPTH_LAYOUTS`, seeded by
    ``rng``); ``near`` > 0 hazes even the nearest point."""
    x = to_float(img)
    h, w = x.shape[:2]
    if depth is None:
        if layout not in DEPTH_LAYOUTS:
            raise ValueError(f"haze layout '{layout}' unknown: choose {', '.join(DEPTH_LAYOUTS)}")
        depth = DEPTH_LAYOUTS[layout]((h, w), rng)
    depth = np.asarray(depth, np.float32)
    if depth.shape != (h, w):
        depth = cv2.resize(depth, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(haze_model(x, transmission(depth, beta, near), airlight), 0.0, 1.0)


def transmission(depth: np.ndarray, beta: float, near: float = 0.0) -> np.ndarray:
    """``t = exp(-beta * (near + (1 - near) * depth))`` (float64, the shape of ``depth``) for :func:`haze`."""
    return np.exp(-float(beta) * (float(near) + (1.0 - float(near)) * np.asarray(depth, np.float64)))


def _haze_sampler(r: np.random.Generator) -> Dict:
    """Wide haze: atmospheric light 0.7-1.0 with a slight per-channel tint, thin to dense, any of the
    depth layouts."""
    a = float(r.uniform(0.7, 1.0))
    tint = r.uniform(-0.04, 0.04, 3) if r.random() < 0.5 else np.zeros(3)
    return {"beta": float(r.uniform(0.5, 2.5)), "airlight": [float(v) for v in np.clip(a + tint, 0.6, 1.0)],
            "layout": str(r.choice(list(DEPTH_LAYOUTS))), "near": float(r.choice([0.0, r.uniform(0.0, 0.3)]))}


# ------------------------------------------------------------------------------------ low light
def low_light(img: np.ndarray, gamma: float = 2.0, gain: float = 0.5, noise_sigma: float = 0.0,
              rng: RngLike = None) -> np.ndarray:
    """Under-exposure: ``gain * J**gamma`` plus Gaussian read noise (``noise_sigma`` in 0-255 units)."""
    x = to_float(img).astype(np.float64)
    dark = gain * np.power(x, gamma)
    if noise_sigma > 0:
        dark = dark + as_rng(rng).standard_normal(dark.shape) * (noise_sigma / 255.0)
    return np.clip(dark, 0.0, 1.0).astype(np.float32)


# -------------------------------------------------------------------------------- compression
def jpeg(img: np.ndarray, quality: int = 30, rng: RngLike = None) -> np.ndarray:
    """JPEG round trip through OpenCV at ``quality`` (RGB in, RGB out)."""
    bgr = cv2.cvtColor(to_uint8(to_float(img)), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("OpenCV failed to encode JPEG")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def bicubic(img: np.ndarray, scale: float = 2.0, rng: RngLike = None) -> np.ndarray:
    """Bicubic down-sampling by ``scale`` then bicubic up-sampling back to the input size (OpenCV)."""
    x = to_float(img)
    h, w = x.shape[:2]
    lw, lh = max(1, int(round(w / scale))), max(1, int(round(h / scale)))
    small = cv2.resize(x, (lw, lh), interpolation=cv2.INTER_CUBIC)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


# ------------------------------------------------------------------------------------ registry
@dataclass
class Degradation:
    """A named degradation: ``fn(img, rng=..., **params)`` with ``defaults``; ``sample(rng)`` draws
    random parameters for training mixes."""

    name: str
    fn: Callable
    defaults: Dict = field(default_factory=dict)
    sample: Optional[Callable[[np.random.Generator], Dict]] = None
    description: str = ""

    def __call__(self, img: np.ndarray, rng: RngLike = None, **params) -> np.ndarray:
        kwargs = dict(self.defaults)
        kwargs.update(params)
        return self.fn(img, rng=as_rng(rng), **kwargs)


DEGRADATIONS: Dict[str, Degradation] = {}


def register_degradation(name: str, fn: Callable, defaults: Dict | None = None,
                         sample: Callable | None = None, description: str = "") -> None:
    if name in DEGRADATIONS:
        raise KeyError(f"degradation '{name}' registered twice")
    DEGRADATIONS[name] = Degradation(name, fn, dict(defaults or {}), sample, description)


def list_degradations() -> List[str]:
    return sorted(DEGRADATIONS)


def get_degradation(name: str) -> Degradation:
    if name not in DEGRADATIONS:
        from ..errors import UnknownNameError, suggest

        raise UnknownNameError(f"unknown degradation '{name}'{suggest(name, DEGRADATIONS)}; available: "
                               f"{', '.join(list_degradations())}")
    return DEGRADATIONS[name]


def degrade(img: np.ndarray, name: str, rng: RngLike = None, **params) -> np.ndarray:
    """Apply the registered degradation ``name`` (defaults overridden by ``params``)."""
    return get_degradation(name)(img, rng=rng, **params)


def random_params(name: str, rng: RngLike = None) -> Dict:
    """Random parameters for ``name`` (its defaults when it has no sampler)."""
    deg = get_degradation(name)
    rng = as_rng(rng)
    return deg.sample(rng) if deg.sample else dict(deg.defaults)


def apply_spec(img: np.ndarray, spec: Union[str, Dict], rng: RngLike = None) -> np.ndarray:
    """Apply ``"name"`` or ``{"name": ..., "random": bool, **params}`` (``random`` draws parameters
    from the sampler first, explicit params still win)."""
    rng = as_rng(rng)
    if isinstance(spec, str):
        return degrade(img, spec, rng)
    spec = dict(spec)
    name = spec.pop("name")
    params = random_params(name, rng) if spec.pop("random", False) else {}
    params.update(spec)
    return degrade(img, name, rng, **params)


def compose(img: np.ndarray, specs: Iterable[Union[str, Dict]], rng: RngLike = None) -> np.ndarray:
    """Apply several degradation specs in order with one generator."""
    rng = as_rng(rng)
    out = to_float(img)
    for spec in specs:
        out = apply_spec(out, spec, rng)
    return out


# Order used by random_composition (physically plausible: scene -> optics -> sensor -> codec).
COMPOSITION_ORDER = ("haze", "rain", "low_light", "motion_blur", "defocus_blur", "bicubic", "gaussian_noise", "jpeg")


def random_composition(img: np.ndarray, rng: RngLike = None, names: Sequence[str] = COMPOSITION_ORDER,
                       min_k: int = 1, max_k: int = 3) -> Tuple[np.ndarray, List[Dict]]:
    """Apply ``k`` random distinct degradations (k in [min_k, max_k]) with random parameters, in the
    canonical order.  Returns the image and the applied specs (for logging / reproduction)."""
    rng = as_rng(rng)
    names = list(names)
    k = int(rng.integers(min_k, min(max_k, len(names)) + 1))
    picked = set(rng.choice(len(names), size=k, replace=False).tolist())
    order = [n for n in COMPOSITION_ORDER if n in names] + [n for n in names if n not in COMPOSITION_ORDER]
    chosen = [n for n in order if names.index(n) in picked]
    specs, out = [], to_float(img)
    for name in chosen:
        params = random_params(name, rng)
        out = degrade(out, name, rng, **params)
        specs.append({"name": name, **params})
    return out, specs


def _noise_sampler(rng):
    return {"sigma": float(rng.uniform(5, 55))}


def identity(img: np.ndarray, rng: RngLike = None) -> np.ndarray:
    """No degradation: clean training pairs teach a restorer to leave clean content alone."""
    return to_float(img)


register_degradation("identity", identity, {}, None, "no degradation (clean input = target)")
register_degradation("gaussian_noise", gaussian_noise, {"sigma": 25.0}, _noise_sampler,
                     "additive Gaussian noise, sigma in 0-255 units, uint8 quantised")
for _s in (15, 25, 50):
    register_degradation(f"noise_{_s}", gaussian_noise, {"sigma": float(_s)}, None, f"Gaussian noise sigma={_s}")
register_degradation("rain", rain, {"density": 0.02, "length": 20, "angle": -75.0, "intensity": 0.8},
                     _rain_sampler, "rain streaks (dots then motion blur, or drawn lines)")
register_degradation("haze", haze, {"beta": 1.2, "airlight": 0.9}, _haze_sampler,
                     "I = J t + A (1 - t), t = exp(-beta d), d from one of several depth layouts")
register_degradation(
    "motion_blur", motion_blur, {"length": 15, "angle": 0.0},
    lambda r: {"length": int(r.integers(5, 25)), "angle": float(r.uniform(0, 180))}, "linear motion blur")
register_degradation(
    "defocus_blur", defocus_blur, {"radius": 3.0},
    lambda r: {"radius": float(r.uniform(1.5, 5.0))}, "pillbox defocus blur")
register_degradation(
    "gaussian_blur", gaussian_blur, {"sigma": 1.5}, lambda r: {"sigma": float(r.uniform(0.5, 3.0))},
    "isotropic Gaussian blur")
register_degradation(
    "low_light", low_light, {"gamma": 2.0, "gain": 0.5, "noise_sigma": 2.0},
    lambda r: {"gamma": float(r.uniform(1.5, 3.0)), "gain": float(r.uniform(0.2, 0.6)),
               "noise_sigma": float(r.uniform(0, 5))}, "under-exposure: gain * J^gamma + read noise")
register_degradation(
    "jpeg", jpeg, {"quality": 30}, lambda r: {"quality": int(r.integers(10, 60))}, "OpenCV JPEG round trip")
register_degradation(
    "bicubic", bicubic, {"scale": 2.0}, lambda r: {"scale": float(r.choice([2.0, 3.0, 4.0]))},
    "bicubic down-sampling and up-sampling back")
for _k in (2, 3, 4):
    register_degradation(f"bicubic_x{_k}", bicubic, {"scale": float(_k)}, None, f"bicubic x{_k} down/up")

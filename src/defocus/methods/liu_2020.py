"""Liu, Liao, Xue & Zhou 2020: edge-based defocus maps combined by a learned regression tree over likelihood features.

From the paper's abstract: edge-based DME keeps defocus discontinuities but reads texture as blur; region-based DME
is texture-free but blurs the discontinuities. The two are combined by regression tree fields (RTF): the input
feature is the K highest local maxima of a localized 2-D frequency likelihood of σ, computed with two orthogonal
gradient operators and matching subsets of Gabor filters; the linear basis is the output of three edge-based methods.

What we chose (only the abstract was available; see docs/methods/liu-2020.md):

* **Likelihood.** The photo's linearised grey image (``Y^2.4``) is differentiated along x and along y (central
  differences); each derivative goes through Gabor filters whose orientations lie around its own axis (x: −30°, 0°,
  30°; y: 60°, 90°, 120°) at 7 radial frequencies 0.15 … 2 rad/px, all applied in the Fourier domain, in overlapping
  row stripes. A sharp natural image has an amplitude spectrum ∝ 1/|ω|, so its derivative has a flat one, and a
  Gaussian blur of σ multiplies the power by exp(−σ²|ω|²): the expected log energy of each (operator, frequency)
  pair, T(σ), is computed once from the filters' transfer functions. Per pixel, the log energies y are compared with
  T(σ) on a grid of σ (0 … 5 px, step 0.25) after removing the unknown contrast (both centred over the 14
  observations): log L(σ) = −‖ȳ − T̄(σ)‖² / (2·v); L is normalised over the grid.
* **Input feature.** The K = 3 highest local maxima of L (their σ and normalised likelihood), the fitted log contrast,
  and the three basis values.
* **Linear basis.** ``karaali-jung-2018``, ``xu-2017`` and ``andrade-2016`` (three different edge measures — re-blur
  ratio at adaptive scales, patch rank, single-scale re-blur ratio — and two propagations), plus a constant.
* **RTF-like combiner.** One regression tree whose leaves each hold a linear model over the basis (a model tree,
  the unary part of an RTF), grown greedily on binned features to minimise the leaves' least-squares error, with a
  per-leaf precision (inverse residual variance on the training pixels). Where an RTF would then solve a Gaussian
  CRF with learned pairwise potentials, we smooth the leaf predictions, weighted by their precision, with the
  edge-aware domain-transform normalised convolution (fixed pairwise model; σs chosen on validation scenes).
  Fitted by ``benchmarks/train_liu_2020.py`` on synthetic training scenes; the parameters are
  ``defocus/weights/liu_2020_tree.safetensors`` (sha256-checked, read without unpickling).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import cv2
import numpy as np
import scipy.fft

from ..errors import WeightsError
from ..filters.domain_transform import interpolate, recursive_filter
from ..filters.noise import noise_std
from ..registry import Method
from .karaali_jung_2018 import linear_gray
from .zhuo_sim import MAX_SIGMA

#: The bundled tree and its sha256 (checked on every load).
WEIGHTS_FILE = "liu_2020_tree.safetensors"
WEIGHTS_SHA256 = "762bb4e59166027b80bfb5ecfbf14c4d8ff380d02925f0121d4320509f194bbf"
#: The edge-based estimators whose maps are the linear basis, in the order of the tree's leaf weights.
BASIS = ("karaali-jung-2018", "xu-2017", "andrade-2016")
#: σ grid of the likelihood, px.
SIGMAS = np.round(np.arange(0.0, MAX_SIGMA + 1e-9, 0.25), 2)
#: Radial frequencies of the Gabor filters, rad/px, and their radial bandwidth relative to the frequency.
FREQUENCIES = np.geomspace(0.15, 2.0, 7)
BANDWIDTH = 0.35
#: Orientations (rad) of the Gabor subsets of the x and the y derivative.
ORIENTATIONS = {"x": (-np.pi / 6, 0.0, np.pi / 6), "y": (np.pi / 3, np.pi / 2, 2 * np.pi / 3)}
LOG_VARIANCE = 0.5  # variance v of a log energy about its model
NOISE_MARGIN = 4.0  # an observation is used where its energy exceeds this many times the noise's
TOP_K = 3
ENERGY_FLOOR = 1e-10
STRIPE = 512  # rows per FFT stripe
MARGIN = 64  # context rows/columns around a stripe: > 3 envelope stds of the lowest frequency (1/(0.35·0.15) px)
N_FEATURES = 2 * TOP_K + 1 + len(BASIS)
CHUNK = 1 << 18  # pixels per likelihood batch (~20 MB per per-σ temporary)


def _frequency_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return (2 * np.pi * np.fft.fftfreq(h))[:, None], (2 * np.pi * np.fft.fftfreq(w))[None, :]


def _filters(fy: np.ndarray, fx: np.ndarray, k: int):
    """(axis, transfer function) of the filters of frequency index ``k`` on the grid (fy, fx), rad/px: the
    derivative (central difference) times a Gabor filter (Gaussian bump at the frequency and orientation)."""
    omega = FREQUENCIES[k]
    b = BANDWIDTH * omega
    for axis, angles in ORIENTATIONS.items():
        deriv = 1j * np.sin(fx) if axis == "x" else 1j * np.sin(fy)
        for theta in angles:
            g = np.exp(-((fx - omega * np.cos(theta)) ** 2 + (fy - omega * np.sin(theta)) ** 2) / (2 * b * b))
            yield axis, deriv * g


@functools.lru_cache(maxsize=1)
def model_log_energy() -> tuple[np.ndarray, np.ndarray]:
    """T(σ): expected log energy of each of the 14 (operator, frequency) observations for a sharp image with a
    1/|ω| amplitude spectrum blurred by each σ of :data:`SIGMAS` (up to a common constant), (len(SIGMAS), 14); and
    the log energy of the same observations for white noise of unit variance, (14,)."""
    fy, fx = _frequency_grid(512, 512)
    radius2 = fx**2 + fy**2
    spectrum = np.where(radius2 > 0, 1.0 / np.maximum(radius2, 1e-12), 0.0)
    table = np.zeros((len(SIGMAS), 2 * len(FREQUENCIES)))
    noise = np.zeros(2 * len(FREQUENCIES))
    for k in range(len(FREQUENCIES)):
        for axis, h in _filters(fy, fx, k):
            column = (0 if axis == "x" else len(FREQUENCIES)) + k
            gain = np.abs(h) ** 2
            noise[column] += float(gain.mean())
            power = gain * spectrum
            for j, s in enumerate(SIGMAS):
                table[j, column] += float(np.sum(power * np.exp(-(s**2) * radius2)))
    return np.log(table / (512 * 512)), np.log(noise)


def _decimation(omega: float) -> int:
    """Largest power of 2 (≤ 8) by which the FFT grid can be cropped for a filter centred at ``omega`` rad/px:
    its passband (to 3 bandwidths) must stay below the cropped grid's Nyquist frequency π/f."""
    reach = omega * (1 + 3 * BANDWIDTH)
    f = 1
    while f < 8 and reach < np.pi / (2 * f):
        f *= 2
    return f


def _crop_spectrum(spec: np.ndarray, f: int) -> np.ndarray:
    """The low-frequency (H/f)×(W/f) block of an unshifted 2-D spectrum: an exact decimation of a band-limited
    signal (H and W multiples of f)."""
    if f == 1:
        return spec
    h, w = spec.shape
    hs, ws = h // f, w // f
    rows = np.r_[0 : (hs + 1) // 2, h - hs // 2 : h]
    cols = np.r_[0 : (ws + 1) // 2, w - ws // 2 : w]
    return spec[np.ix_(rows, cols)] / (f * f)


def _fft_size(n: int) -> int:
    """The smallest length ≥ n that is a multiple of 8 (for the spectrum crops) and fast for the FFT (5-smooth
    lengths; a length with a large prime factor, 6128 = 16·383 for a 6000 px row plus context, is many times
    slower)."""
    m = scipy.fft.next_fast_len(n, real=False)
    while m % 8:
        m = scipy.fft.next_fast_len(m + 1, real=False)
    return m


def log_energies(gray: np.ndarray) -> np.ndarray:
    """The 14 log energies (x and y derivative × 7 frequencies, orientations of a subset summed) of a grey tile;
    (H, W, 14) float32. The tile is reflect-padded to a fast FFT size; the caller provides the context."""
    h, w = gray.shape
    hp, wp = _fft_size(h), _fft_size(w)
    tile = np.pad(np.asarray(gray, np.float32), ((0, hp - h), (0, wp - w)), mode="reflect")
    spec = scipy.fft.fft2(tile)  # complex64: single precision is plenty for log energies and twice as fast
    out = np.zeros((h, w, 2 * len(FREQUENCIES)), np.float32)
    for k, omega in enumerate(FREQUENCIES):
        f = _decimation(omega)
        small = _crop_spectrum(spec, f)
        fy, fx = _frequency_grid(*small.shape)
        fy, fx = fy / f, fx / f  # the cropped grid's frequencies in full-resolution units (rad/px)
        energy = {"x": 0.0, "y": 0.0}
        for axis, transfer in _filters(fy, fx, k):
            response = scipy.fft.ifft2(small * transfer.astype(np.complex64))
            energy[axis] = energy[axis] + (response.real**2 + response.imag**2)
        for column, axis in ((k, "x"), (len(FREQUENCIES) + k, "y")):
            e = np.asarray(energy[axis], np.float32)
            if f > 1:
                e = cv2.resize(e, (wp, hp), interpolation=cv2.INTER_LINEAR)
            out[:, :, column] = np.log(np.maximum(e[:h, :w], ENERGY_FLOOR))
    return out


def likelihood_features(log_e: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """Top-K local maxima of the σ likelihood and the log contrast, from log energies (..., 14); (..., 2K + 1).

    Observations less than :data:`NOISE_MARGIN` times the energy that white noise of std ``noise`` would give are
    left out of the fit (they carry noise, not the image's spectrum). Columns: σ₁, L₁, σ₂, L₂, …, σ_K, L_K (maxima by
    decreasing normalised likelihood L; a missing maximum repeats σ₁ with L = 0), then the fitted log contrast at σ₁.
    Pixels are processed in chunks of :data:`CHUNK` (the per-σ temporaries are 21 values per pixel).
    """
    shape = log_e.shape[:-1]
    y = log_e.reshape(-1, log_e.shape[-1])
    out = np.empty((len(y), 2 * TOP_K + 1), np.float32)
    for i in range(0, len(y), CHUNK):
        out[i : i + CHUNK] = _likelihood_chunk(y[i : i + CHUNK].astype(np.float32), noise)
    return out.reshape(*shape, 2 * TOP_K + 1)


def _likelihood_chunk(y: np.ndarray, noise: float) -> np.ndarray:
    table, noise_gain = model_log_energy()
    table = table.astype(np.float32)
    if noise > 0:
        floor = (2.0 * np.log(noise) + noise_gain + np.log(NOISE_MARGIN)).astype(np.float32)
        m = (y > floor[None, :]).astype(np.float32)
        m[m.sum(axis=1) < 3] = 1.0  # too few usable observations: fit them all
    else:
        m = np.ones_like(y)
    # Masked least squares with the contrast a_j profiled out, for every σ_j at once:
    # Σ m(y − T_j − a_j)² = Σ m·y² − 2 Σ m·y·T_j + Σ m·T_j² − (Σ m·y − Σ m·T_j)² / Σ m.
    count = m.sum(axis=1, keepdims=True)
    my = m * y
    sum_y = my.sum(axis=1, keepdims=True)
    sum_t = m @ table.T
    sse = (my * y).sum(axis=1, keepdims=True) - 2.0 * (my @ table.T) + m @ (table * table).T \
        - (sum_y - sum_t) ** 2 / count
    ll = -sse / (2.0 * LOG_VARIANCE)
    ll -= ll.max(axis=1, keepdims=True)
    p = np.exp(ll)
    p /= p.sum(axis=1, keepdims=True)
    left = np.concatenate([np.full((len(p), 1), -1.0, np.float32), p[:, :-1]], axis=1)
    right = np.concatenate([p[:, 1:], np.full((len(p), 1), -1.0, np.float32)], axis=1)
    peaks = np.where((p >= left) & (p > right), p, 0.0)
    rows = np.arange(len(p))
    feats = np.empty((len(p), 2 * TOP_K + 1), np.float32)
    for i in range(TOP_K):  # K argmax passes: cheaper than sorting the whole grid
        j = np.argmax(peaks, axis=1)
        value = peaks[rows, j]
        if i == 0:
            best = j
        feats[:, 2 * i] = np.where(value > 0, SIGMAS[j], SIGMAS[best])
        feats[:, 2 * i + 1] = value
        peaks[rows, j] = 0.0
    feats[:, -1] = (sum_y[:, 0] - sum_t[rows, best]) / count[:, 0]
    return feats


def stripes(h: int, stripe: int = STRIPE):
    """(y0, y1) of the row stripes the likelihood is computed in."""
    for y0 in range(0, h, stripe):
        yield y0, min(h, y0 + stripe)


def _reflected(index: np.ndarray, n: int) -> np.ndarray:
    """Indices into an axis of length n, reflected at its ends as np.pad's "reflect" does (any distance)."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.mod(index, period)
    return np.where(index >= n, period - index, index)


def stripe_log_energies(gray: np.ndarray, y0: int, y1: int) -> np.ndarray:
    """:func:`log_energies` of rows y0:y1 of ``gray``, computed with :data:`MARGIN` px of context on every side
    (reflected beyond the image), so that stripes agree with one whole-image tile."""
    h, w = gray.shape
    rows = _reflected(np.arange(y0 - MARGIN, y1 + MARGIN), h)
    cols = _reflected(np.arange(-MARGIN, w + MARGIN), w)
    return log_energies(gray[np.ix_(rows, cols)])[MARGIN : MARGIN + (y1 - y0), MARGIN : MARGIN + w]


def tree_inputs(image: np.ndarray, basis: np.ndarray, stripe: int = STRIPE):
    """Per row stripe: (y0, y1, features ((y1−y0)·W, F), basis values ((y1−y0)·W, B)), both float32.

    Features: the likelihood's top-K maxima and log contrast (:func:`likelihood_features`), then the basis values.
    """
    gray = linear_gray(image)
    noise = noise_std(gray)
    for y0, y1 in stripes(gray.shape[0], stripe):
        lik = likelihood_features(stripe_log_energies(gray, y0, y1), noise)
        b = np.moveaxis(basis[:, y0:y1], 0, -1)
        yield y0, y1, np.concatenate([lik, b], axis=-1).reshape(-1, N_FEATURES), b.reshape(-1, basis.shape[0])


# --- the tree ---------------------------------------------------------------------------------------------------


class ModelTree:
    """A binary regression tree whose leaves hold linear models over the basis ``[1, b₁, b₂, b₃]``.

    Arrays (one row per node): ``feature`` (split feature index, −1 for a leaf), ``threshold`` (go left where
    feature ≤ threshold), ``left``/``right`` (child node indices), ``weights`` (leaf linear model), ``precision``
    (leaf inverse residual variance, 1/px²).
    """

    def __init__(self, feature, threshold, left, right, weights, precision) -> None:
        self.feature = np.asarray(feature, np.int32)
        self.threshold = np.asarray(threshold, np.float32)
        self.left = np.asarray(left, np.int32)
        self.right = np.asarray(right, np.int32)
        self.weights = np.asarray(weights, np.float32)
        self.precision = np.asarray(precision, np.float32)

    def leaves(self, features: np.ndarray) -> np.ndarray:
        """Leaf index of each row of ``features`` (N, F)."""
        node = np.zeros(len(features), np.int32)
        for _ in range(64):
            f = self.feature[node]
            inner = f >= 0
            if not inner.any():
                break
            idx = np.nonzero(inner)[0]
            go_left = features[idx, f[idx]] <= self.threshold[node[idx]]
            node[idx] = np.where(go_left, self.left[node[idx]], self.right[node[idx]])
        return node

    def predict(self, features: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """σ (N,) and precision (N,) for features (N, F) and basis values (N, B) (the constant is added here)."""
        leaf = self.leaves(features)
        w = self.weights[leaf]
        sigma = w[:, 0] + np.einsum("nb,nb->n", w[:, 1:], basis)
        return sigma.astype(np.float32), self.precision[leaf]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"feature": self.feature, "threshold": self.threshold, "left": self.left, "right": self.right,
                "weights": self.weights, "precision": self.precision}


def load_basis() -> list[Method]:
    """The edge-based estimators of :data:`BASIS`, with their default options."""
    from .. import registry

    return [registry.load(name) for name in BASIS]


def basis_maps(image: np.ndarray, methods: list[Method]) -> np.ndarray:
    """Their σ maps of one photo, (len(methods), H, W) float32."""
    return np.stack([m.predict(image) for m in methods])


def weights_path() -> Path:
    return Path(__file__).resolve().parents[1] / "weights" / WEIGHTS_FILE


def load_tree(path: str | Path | None = None, sha256: str | None = None) -> tuple[ModelTree, dict[str, str]]:
    """The fitted tree and its metadata from a safetensors file, after checking its sha256 (the bundled file's by
    default)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = Path(path) if path is not None else weights_path()
    want = WEIGHTS_SHA256 if sha256 is None and path == weights_path() else sha256
    if not path.is_file():
        raise WeightsError(f"{path}: weight file not found")
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if want and got != want:
        raise WeightsError(f"{path}: sha256 {got[:16]}… does not match the expected {want[:16]}…")
    arrays = load_file(str(path))
    with safe_open(str(path), "np") as f:
        meta = dict(f.metadata() or {})
    return ModelTree(**{k: arrays[k] for k in ("feature", "threshold", "left", "right", "weights", "precision")}), meta


class Liu2020(Method):
    """Liu et al. 2020 defocus map (Gaussian σ in px, clipped at 5): three edge-based maps combined per pixel by a
    regression tree over frequency-likelihood features, then precision-weighted edge-aware smoothing.

    Parameters
    ----------
    smooth_sigma_s : float or None
        Spatial σ (px) of the smoothing of the tree's output (the CRF step); None: the fitted value, as the same
        fraction of the photo's shorter side as on the 320 px training scenes; 0 switches it off.
    smooth_sigma_r : float
        Range σ of that smoothing (domain transform, on the RF-simplified photo).
    weights : str or None
        Another fitted tree (safetensors written by ``benchmarks/train_liu_2020.py``); its sha256 is not checked.
    """

    task = "dme"
    summary = "three edge-based maps combined by a trained regression tree over Gabor frequency-likelihood maxima"
    paper = ("Liu, Liao, Xue & Zhou, 'Defocus map estimation from a single image using improved likelihood feature "
             "and edge-based basis', Pattern Recognition 107:107485, 2020")

    def __init__(self, device: str = "cpu", smooth_sigma_s: float | None = None, smooth_sigma_r: float = 0.5,
                 weights: str | None = None) -> None:
        super().__init__(device=device)
        self.tree, meta = load_tree(weights, "" if weights is not None else None)
        # The fitted σs (px at the training scenes' side) is kept as a fraction of the shorter side, so that the
        # smoothing covers the same share of a larger photo (as karaali-jung-2018's σs = min(H, W)/8 does).
        self.smooth_fraction = float(meta.get("smooth_sigma_s", 0.0)) / float(meta.get("size", 320))
        self.smooth_sigma_s = None if smooth_sigma_s is None else float(smooth_sigma_s)
        self.smooth_sigma_r = float(smooth_sigma_r)
        if (self.smooth_sigma_s or 0.0) < 0 or not self.smooth_sigma_r > 0:
            raise ValueError(f"need smooth_sigma_s >= 0 and smooth_sigma_r > 0, got {smooth_sigma_s}, {smooth_sigma_r}")
        self.basis = load_basis()


    def predict(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        h, w = image.shape[:2]
        basis = basis_maps(image, self.basis)
        mean = np.empty((h, w), np.float32)
        precision = np.empty((h, w), np.float32)
        for y0, y1, feats, b in tree_inputs(image, basis):
            s, p = self.tree.predict(feats, b)
            mean[y0:y1] = s.reshape(y1 - y0, w)
            precision[y0:y1] = p.reshape(y1 - y0, w)
        del basis
        mean = np.clip(mean, 0.0, MAX_SIGMA)
        sigma_s = self.smooth_fraction * min(h, w) if self.smooth_sigma_s is None else self.smooth_sigma_s
        if sigma_s > 0:
            guide = recursive_filter(image, image, 7.0, 0.5, 3)
            mean = interpolate(mean, precision, guide, max(sigma_s, 1.0), self.smooth_sigma_r, 3)
        return np.clip(np.nan_to_num(mean), 0.0, MAX_SIGMA).astype(np.float32)

"""Focus verdicts from a blur map: is a photo sharp, a sharp subject against a soft background, or out of focus?

:func:`assess` judges one photo (an RGB array). It works on a copy resized to a fixed long side
(:data:`LONG_SIDE` px), so a photo and its 3× upscale are judged alike: the blur detector sees the same content,
and edge crispness is measured at a scale where the softening an upscale brings has been undone by the downscale.

Two kinds of evidence are combined:

* the **blur map** of a registered detector (1 = out of focus): which part of the frame is in focus, and where the
  subject is;
* **edge crispness** of the in-focus part, measured on the photo itself (:func:`defocus.synth.scenes.reblur_ratio`:
  how much the strongest edges lose when re-blurred by a Gaussian of σ = 1 px at the normalised size). It is an
  absolute measure, so a frame that is blurred everywhere, where a detector that judges blur relative to the rest of
  the frame might still call some part "in focus", is still caught.

The constants below were calibrated on synthetic scenes with known blur (``defocus.synth``, validation split); how,
and with what result on real photos, is in docs/cull.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

#: The three verdicts, best first (the order reports are sorted in).
VERDICTS = ("sharp", "shallow-dof", "missed-focus")

#: The blur detector culling uses unless told otherwise: the thresholds below were calibrated on its maps
#: (docs/cull.md), so it stays when the package's default detector changes.
DETECTOR = "light-dffnet"

#: Long side in px of the copy every photo is judged at (smaller photos are upscaled to it, larger ones reduced).
LONG_SIDE = 640

#: A pixel counts as in focus where the blur map is below this.
IN_FOCUS_BLUR = 0.5
#: At least this share of the frame in focus makes a photo ``sharp`` (below it, with a sharp subject: shallow-dof).
SHARP_FRACTION = 0.6
#: The subject (or, without one, the sharpest part) must reach this focus score (1 - mean blur) to count as sharp.
SUBJECT_FOCUS_MIN = 0.5
#: ... and its edges this crispness (see :func:`crispness`); below it, the "in-focus" part is itself soft.
CRISPNESS_MIN = 0.2
#: Regions smaller than this share of the frame are too small to carry a photo (specks of the map).
MIN_REGION = 0.01
#: Edges weaker than this (90th percentile of the Sobel magnitude, grey in [0, 1]) are too faint to judge: the
#: crispness of a flat or noise-only region is not measured.
MIN_EDGE_STRENGTH = 0.1
#: Reblur ratio of perfectly crisp edges (a step edge keeps about half its Sobel response after a σ = 1 px blur):
#: crispness 1 there, 0 at ratio 1 (edges that lose nothing, i.e. already blurred).
CRISP_RATIO = 0.5

#: The score names of :attr:`Assessment.scores`, in report column order.
SCORES = ("focus_fraction", "peak_focus", "crispness", "subject_focus", "subject_area")


@dataclass
class Assessment:
    """The focus verdict of one photo.

    Attributes
    ----------
    verdict : {"sharp", "shallow-dof", "missed-focus"}
        ``sharp``: most of the frame (at least :data:`SHARP_FRACTION`) is in focus. ``shallow-dof``: a sharp subject
        against a soft background (a good photo). ``missed-focus``: nothing in the frame is sharp — or, when a
        subject region was given, that region is not.
    confidence : float in [0.5, 1]
        How far the deciding scores lie from the thresholds that decided the verdict: 0.5 on a threshold, 1 at a
        comfortable distance (a quarter of the score's range) from every one of them.
    scores : dict of str to float
        ``focus_fraction`` [0, 1]: share of the frame in focus (blur map < 0.5).
        ``peak_focus`` [0, 1]: 1 − mean blur of the sharpest 5 % of the frame (how in focus the best part is).
        ``crispness`` [0, 1] or NaN: edge crispness of the in-focus part (of the subject where one was given), 1 =
        edges as crisp as a step edge, 0 = already blurred; NaN where there are too few edges to judge.
        ``subject_focus`` [0, 1]: 1 − mean blur over the subject.
        ``subject_area`` [0, 1]: the subject's share of the frame (0 when no in-focus region was found).
    subject : (x, y, w, h)
        The subject's bounding box in fractions of the width and height (the region given, or the largest, most
        central in-focus region; the central third of the frame when nothing is in focus).
    blur_map : ndarray (h, w) float32 in [0, 1]
        The detector's blur map of the normalised copy (long side :data:`LONG_SIDE`), for overlays.
    """

    verdict: str
    confidence: float
    scores: dict[str, float]
    subject: tuple[float, float, float, float]
    blur_map: np.ndarray = field(repr=False)


def normalised(image: np.ndarray, long_side: int = LONG_SIDE) -> np.ndarray:
    """``image`` resized so that its long side is ``long_side`` px (area filter down, bicubic up), float32 [0, 1]."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return np.ascontiguousarray(image, dtype=np.float32)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return np.clip(cv2.resize(np.asarray(image, np.float32), size, interpolation=interp), 0.0, 1.0)


def crispness(gray: np.ndarray, region: np.ndarray) -> float:
    """Edge crispness of ``region`` of a grey image at the normalised size, in [0, 1] (NaN: too few edges).

    ``(1 - r) / (1 - CRISP_RATIO)`` clipped to [0, 1], r the reblur ratio of the region's strongest edges
    (:func:`defocus.synth.scenes.reblur_ratio`): about 1 on in-focus edges, 0 on edges already blurred by σ ≳ 2 px.
    """
    from ..synth.scenes import reblur_ratio

    ratio, strength = reblur_ratio(gray, region)
    if not np.isfinite(ratio) or strength < MIN_EDGE_STRENGTH:
        return float("nan")
    return float(np.clip((1.0 - ratio) / (1.0 - CRISP_RATIO), 0.0, 1.0))


def parse_region(text: str) -> tuple[float, float, float, float]:
    """``"x,y,w,h"`` in fractions of the width and height (0..1) -> a checked tuple; ValueError with the reason."""
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: expected four numbers x,y,w,h (fractions of the width and height)") from None
    return check_region((x, y, w, h))


def check_region(region) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in region)
    if not all(np.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0 or x < 0 or y < 0 \
            or x + w > 1 + 1e-6 or y + h > 1 + 1e-6:
        raise ValueError(f"subject region {x:g},{y:g},{w:g},{h:g}: x, y >= 0, w, h > 0 and x + w, y + h <= 1 "
                         "(fractions of the width and height)")
    return x, y, w, h


def _box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    h, w = shape
    x0, y0 = int(np.floor(box[0] * w)), int(np.floor(box[1] * h))
    x1, y1 = max(x0 + 1, int(np.ceil((box[0] + box[2]) * w))), max(y0 + 1, int(np.ceil((box[1] + box[3]) * h)))
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def find_subject(in_focus: np.ndarray) -> np.ndarray | None:
    """The in-focus region most likely to be the subject: the connected component with the largest area weighted
    by centrality (a Gaussian of the centroid's distance from the frame's centre, σ = 0.35 of each side). None if
    no component covers :data:`MIN_REGION` of the frame."""
    h, w = in_focus.shape
    # An opening drops the specks and one-pixel bridges the map's edges leave between separate regions.
    k = max(3, round(0.01 * max(h, w)) | 1)
    opened = cv2.morphologyEx(in_focus.astype(np.uint8), cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(opened, connectivity=8)
    best, best_score = None, 0.0
    for i in range(1, n):
        area = stats[i, cv2.CC_STAT_AREA] / (h * w)
        if area < MIN_REGION:
            continue
        dx, dy = centroids[i][0] / w - 0.5, centroids[i][1] / h - 0.5
        score = area * np.exp(-(dx * dx + dy * dy) / (2 * 0.35 ** 2))
        if score > best_score:
            best, best_score = i, score
    return None if best is None else labels == best


def _bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    return (xs.min() / w, ys.min() / h, (xs.max() + 1 - xs.min()) / w, (ys.max() + 1 - ys.min()) / h)


def _margin(value: float, threshold: float, width: float = 0.25) -> float:
    """Distance of a score from its threshold, as a share of ``width`` (capped at 1)."""
    return min(1.0, abs(value - threshold) / width)


def judge(scores: dict[str, float], subject_given: bool = False) -> tuple[str, float]:
    """The verdict and confidence that :func:`assess` gives for a set of scores (see :class:`Assessment`)."""
    crisp = scores["crispness"]
    # Is the subject (or, with no region given, the best part of the frame) sharp? Each test: (passed, margin).
    focus_key = "subject_focus" if subject_given else "peak_focus"
    tests = [(scores[focus_key] >= SUBJECT_FOCUS_MIN, _margin(scores[focus_key], SUBJECT_FOCUS_MIN))]
    if not subject_given:
        area = scores["focus_fraction"]
        tests.append((area >= MIN_REGION, _margin(area, MIN_REGION, 4 * MIN_REGION)))
    if np.isfinite(crisp):
        tests.append((crisp >= CRISPNESS_MIN, _margin(crisp, CRISPNESS_MIN)))
    failed = [m for ok, m in tests if not ok]
    if failed:
        return "missed-focus", 0.5 + 0.5 * max(failed)
    sure = min(m for _, m in tests)
    fraction = scores["focus_fraction"]
    verdict = "sharp" if fraction >= SHARP_FRACTION else "shallow-dof"
    return verdict, 0.5 + 0.5 * min(sure, _margin(fraction, SHARP_FRACTION))


def assess(image: np.ndarray, detector=None, *, subject=None, long_side: int = LONG_SIDE) -> Assessment:
    """Judge the focus of one photo.

    Parameters
    ----------
    image : ndarray (H, W, 3) float32 RGB in [0, 1] (as :func:`defocus.read_image` returns)
    detector : a blur detector (``defocus.load(name)``, task "dbd") or a registered name; default
        :data:`DETECTOR`. Pass a loaded one when judging many photos.
    subject : (x, y, w, h) in fractions of the width and height, optional
        The region the photographer meant to be sharp; default: found from the blur map (:func:`find_subject`).
    long_side : int
        Long side in px of the copy the photo is judged at (:data:`LONG_SIDE`; the thresholds were calibrated there).

    Returns
    -------
    Assessment
    """
    from .. import registry
    from ..filters import gray

    if detector is None or isinstance(detector, str):
        detector = registry.load(detector or DETECTOR)
    if getattr(detector, "task", "dbd") != "dbd":
        raise ValueError(f"{getattr(detector, 'name', detector)!r} is a {detector.task} method; culling needs a "
                         "blur detector (task dbd)")
    box = check_region(subject) if subject is not None else None
    small = normalised(registry.as_photo(image), long_side)
    blur = np.clip(np.nan_to_num(np.asarray(detector.predict(small), np.float32), nan=1.0), 0.0, 1.0)
    grey = gray(small)
    in_focus = blur < IN_FOCUS_BLUR
    sharpest = blur <= np.quantile(blur, 0.05)
    if box is not None:
        region = _box_mask(blur.shape, box)
    else:
        region = find_subject(in_focus)
    if region is None:
        subject_box = (1 / 3, 1 / 3, 1 / 3, 1 / 3)
        subject_mask, subject_area = _box_mask(blur.shape, subject_box), 0.0
    else:
        subject_mask = region
        subject_box = box if box is not None else _bbox(region)
        subject_area = float(region.mean())
    # Crispness of what should be sharp: the in-focus part of the subject (of the frame, with no region given).
    judged = (subject_mask if box is not None else np.ones_like(in_focus)) & in_focus
    if judged.sum() < MIN_REGION * blur.size:
        judged = (subject_mask if box is not None else np.ones_like(in_focus)) & sharpest
        if judged.sum() < 200:
            judged = sharpest
    scores = {
        "focus_fraction": float(in_focus.mean()),
        "peak_focus": float(1.0 - blur[sharpest].mean()),
        "crispness": crispness(grey, judged),
        "subject_focus": float(1.0 - blur[subject_mask].mean()),
        "subject_area": subject_area,
    }
    verdict, confidence = judge(scores, subject_given=box is not None)
    return Assessment(verdict, float(confidence), scores, tuple(float(v) for v in subject_box), blur)


def verdict_fields(image: np.ndarray, blur_map: np.ndarray, detector) -> dict:
    """The culling verdict of a photo as JSON-ready fields (``verdict``, ``confidence``, ``scores``; a score that
    cannot be judged is None), for the ``/api/detect`` answer of ``defocus serve``. ``blur_map`` is unused: the
    verdict is judged on the normalised copy, as :func:`assess` does, with the same ``detector``."""
    a = assess(image, detector)
    scores = {k: (float(v) if np.isfinite(v) else None) for k, v in a.scores.items()}
    return {"verdict": a.verdict, "confidence": round(float(a.confidence), 4), "scores": scores}

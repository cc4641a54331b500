"""A minimal line chart drawn with OpenCV, for the PNG figures that must not need matplotlib (not a dependency):
PR and F-vs-threshold curves (``defocus evaluate --curves``) and reliability diagrams (``benchmarks/calibrate.py``).

Axes span [0, 1] × [0, 1] with a grid at 0.1, a legend in the lower-left corner and a title line; fonts are
OpenCV's Hershey simplex (ASCII only: labels are transliterated to ``?`` where they are not).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Line colours (BGR), cycled: blue, orange, green, red, purple, brown, pink, grey.
COLOURS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148), (75, 86, 140),
           (194, 119, 227), (127, 127, 127))


def _ascii(text: str) -> str:
    return text.replace("β", "beta").replace("²", "^2").replace("–", "-").encode("ascii", "replace").decode()


def line_chart(series: Sequence[tuple[str, Sequence[float], Sequence[float]]], *, xlabel: str, ylabel: str,
               title: str, size: tuple[int, int] = (640, 520), diagonal: bool = False,
               legend: str = "lower left") -> np.ndarray:
    """An RGB uint8 image (height, width, 3) of the given lines.

    Parameters
    ----------
    series : sequence of (label, x, y)
        Lines in data units within [0, 1]; NaN points break a line.
    xlabel, ylabel, title : str
    size : (width, height) in px
    diagonal : bool
        Draw the dashed y = x line (the perfectly calibrated line of a reliability diagram).
    legend : {"lower left", "upper left"}
        Corner of the legend (upper left suits a reliability diagram, whose lines run near the diagonal).
    """
    if legend not in ("lower left", "upper left"):
        raise ValueError(f"legend={legend!r}: expected 'lower left' or 'upper left'")
    width, height = size
    left, right, top, bottom = 62, 16, 34, 48
    img = np.full((height, width, 3), 255, np.uint8)
    pw, ph = width - left - right, height - top - bottom

    def to_px(x, y):
        return int(round(left + np.clip(x, 0, 1) * pw)), int(round(top + (1 - np.clip(y, 0, 1.02)) * ph))

    font, grey = cv2.FONT_HERSHEY_SIMPLEX, (200, 200, 200)
    for k in range(11):
        v = k / 10
        cv2.line(img, to_px(v, 0), to_px(v, 1), grey, 1)
        cv2.line(img, to_px(0, v), to_px(1, v), grey, 1)
        if k % 2 == 0:
            x, y = to_px(v, 0)
            cv2.putText(img, f"{v:.1f}", (x - 12, y + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
            x, y = to_px(0, v)
            cv2.putText(img, f"{v:.1f}", (x - 30, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, to_px(0, 1), to_px(1, 0), (0, 0, 0), 1)
    if diagonal:
        for k in range(0, 20, 2):
            cv2.line(img, to_px(k / 20, k / 20), to_px((k + 1) / 20, (k + 1) / 20), (90, 90, 90), 1, cv2.LINE_AA)
    for i, (_, xs, ys) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(x, y) for x, y in zip(xs, ys)]
        run: list[tuple[int, int]] = []
        for x, y in pts + [(np.nan, np.nan)]:
            if np.isfinite(x) and np.isfinite(y):
                run.append(to_px(x, y))
                continue
            if len(run) > 1:
                cv2.polylines(img, [np.array(run, np.int32)], False, colour, 2, cv2.LINE_AA)
            elif len(run) == 1:
                cv2.circle(img, run[0], 2, colour, -1, cv2.LINE_AA)
            run = []
    cv2.putText(img, _ascii(title), (left, 22), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, _ascii(xlabel), (left + pw // 2 - 30, height - 10), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    (tw, _), _ = cv2.getTextSize(_ascii(ylabel), font, 0.45, 1)
    label = np.full((20, tw + 4, 3), 255, np.uint8)
    cv2.putText(label, _ascii(ylabel), (2, 14), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    label = np.rot90(label)
    y0 = max(top, top + ph // 2 - label.shape[0] // 2)
    img[y0:y0 + min(label.shape[0], height - y0), 2:22] = label[:height - y0]
    for i, (name, _, _) in enumerate(series):
        y = top + 20 + 16 * i if legend == "upper left" else top + ph - 12 - 16 * (len(series) - 1 - i)
        cv2.line(img, (left + 10, y - 4), (left + 30, y - 4), COLOURS[i % len(COLOURS)], 2, cv2.LINE_AA)
        cv2.putText(img, _ascii(name), (left + 36, y), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img[..., ::-1].copy()  # BGR drawing -> RGB


def png_bytes(rgb: np.ndarray, colours: int | None = None) -> bytes:
    """PNG encoding of an RGB uint8 image; with ``colours`` (2 … 256), as a palette PNG of at most that many
    colours (about a fifth of the size for a chart: what the figures kept in docs/img use)."""
    if colours is not None:
        import io

        from PIL import Image

        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(rgb)).quantize(int(colours)).save(out, "PNG", optimize=True)
        return out.getvalue()
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()

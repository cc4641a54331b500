"""defocus cull: verdicts on generated scenes, resolution invariance, the subject option, the reports, XMP
sidecars and bad input in a batch."""

import contextlib
import csv
import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from defocus.cli import main
from defocus.cull.core import DETECTOR


def scene(kind: str, h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A multi-scale random texture: sharp everywhere ("sharp"), sharp inside a central ellipse and blurred
    outside ("shallow"), or blurred everywhere ("blurred"; Gaussian σ = 2 % of the width)."""
    rng = np.random.default_rng(seed)
    img = sum(cv2.resize(rng.random((h // s + 1, w // s + 1, 3)).astype(np.float32), (w, h),
                         interpolation=cv2.INTER_NEAREST) for s in (4, 8, 16, 32)) / 4
    img = np.clip((img - 0.5) * 2 + 0.5, 0, 1).astype(np.float32)
    blurred = cv2.GaussianBlur(img, (0, 0), 0.02 * w)
    if kind == "sharp":
        return img
    if kind == "blurred":
        return blurred
    yy, xx = np.mgrid[:h, :w]
    inside = ((xx - w / 2) / (0.22 * w)) ** 2 + ((yy - h / 2) / (0.3 * h)) ** 2 <= 1
    return np.where(inside[..., None], img, blurred)


def save(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.round(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def detector():
    import defocus

    return defocus.load(DETECTOR)


@pytest.mark.parametrize("kind, verdict", [("sharp", "sharp"), ("shallow", "shallow-dof"),
                                           ("blurred", "missed-focus")])
def test_verdicts_on_generated_scenes(detector, kind, verdict):
    from defocus.cull import VERDICTS, assess

    a = assess(scene(kind), detector)
    assert a.verdict == verdict
    assert a.verdict in VERDICTS and 0.5 <= a.confidence <= 1
    assert set(a.scores) == {"focus_fraction", "peak_focus", "crispness", "subject_focus", "subject_area"}
    assert all(0 <= v <= 1 for v in a.scores.values() if np.isfinite(v))


def test_verdict_and_scores_survive_a_3x_upscale(detector):
    from defocus.cull import assess

    image = scene("shallow", seed=1)
    up = np.clip(cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), 0, 1)
    a, b = assess(image, detector), assess(up, detector)
    assert a.verdict == b.verdict == "shallow-dof"
    assert abs(a.scores["focus_fraction"] - b.scores["focus_fraction"]) < 0.05
    assert abs(a.scores["crispness"] - b.scores["crispness"]) < 0.1


def test_subject_region_decides_the_verdict(detector):
    from defocus.cull import assess

    image = scene("shallow")
    centre = assess(image, detector, subject=(0.4, 0.4, 0.2, 0.2))
    corner = assess(image, detector, subject=(0.0, 0.0, 0.15, 0.15))
    assert centre.verdict == "shallow-dof" and centre.subject == (0.4, 0.4, 0.2, 0.2)
    assert corner.verdict == "missed-focus"  # the background the photographer pointed at is soft
    with pytest.raises(ValueError, match="fractions"):
        assess(image, detector, subject=(0.5, 0.5, 0.8, 0.2))


def run_cli(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(args)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def culled(tmp_path_factory):
    """One run over a folder tree: three scenes, a corrupt file, and a photo of the same name in a sub-folder."""
    root = tmp_path_factory.mktemp("cull")
    photos = root / "photos"
    save(photos / "blurred.png", scene("blurred"))
    save(photos / "shallow.png", scene("shallow"))
    save(photos / "sharp.png", scene("sharp"))
    save(photos / "sub" / "shallow.png", scene("shallow", seed=2))
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = root / "out"
    code, err = run_cli(["cull", str(photos), "-r", "-o", str(out), "--xmp"])
    return photos, out, code, err


def test_batch_reports_the_corrupt_file_and_processes_the_rest(culled):
    photos, out, code, err = culled
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("defocus: error:") and "corrupt.jpg" in line]
    assert len(errors) == 1
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert len(rows) == 5
    bad = [r for r in rows if r["path"].endswith("corrupt.jpg")]
    assert len(bad) == 1 and "corrupt.jpg" in bad[0]["error"] and bad[0]["verdict"] == ""
    assert all(r["error"] == "" for r in rows if r is not bad[0])


def test_reports_are_sorted_best_first_and_agree(culled):
    photos, out, _, _ = culled
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert [Path(r["path"]).name for r in rows][0] == "sharp.png"
    assert [r["verdict"] for r in rows] == ["sharp", "shallow-dof", "shallow-dof", "missed-focus", ""]
    assert {"path", "verdict", "confidence", "focus_fraction", "crispness", "subject_focus", "error"} <= set(rows[0])
    records = json.loads((out / "report.json").read_text())
    assert [r["path"] for r in records] == [r["path"] for r in rows]
    assert records[-1]["verdict"] is None and records[-1]["error"]


def test_html_sheet_opens_from_disk_with_every_row(culled):
    photos, out, _, _ = culled

    class Collect(HTMLParser):
        figures, images, buttons = [], [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "figure":
                self.figures.append(attrs["data-verdict"])
            elif tag == "img":
                self.images.append(attrs["src"])
            elif tag == "button":
                self.buttons.append(attrs["data-show"])

    page = Collect()
    page.feed((out / "report.html").read_text())
    assert page.figures == ["sharp", "shallow-dof", "shallow-dof", "missed-focus", "error"]
    assert {"all", "sharp", "shallow-dof", "missed-focus"} <= set(page.buttons)
    assert len(page.images) == 4 and len(set(page.images)) == 4  # same file name in two folders: two thumbnails
    for src in page.images:
        assert not src.startswith(("http:", "https:", "/")) and (out / src).is_file()


def test_xmp_sidecars_beside_each_photo(culled):
    photos, _, _, _ = culled
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "xmp": "http://ns.adobe.com/xap/1.0/"}
    expected = {"sharp.png": ("3", "Green"), "shallow.png": ("3", "Blue"), "blurred.png": ("1", "Red")}
    for name, (rating, label) in expected.items():
        desc = ET.parse(photos / f"{name}.xmp").getroot().find("rdf:RDF/rdf:Description", ns)
        assert desc.get(f"{{{ns['xmp']}}}Rating") == rating and desc.get(f"{{{ns['xmp']}}}Label") == label
    assert (photos / "sub" / "shallow.png.xmp").is_file() and not (photos / "corrupt.jpg.xmp").exists()


def test_existing_reports_and_sidecars_are_kept_without_force(tmp_path, culled):
    _, out, _, _ = culled
    code, err = run_cli(["cull", str(culled[0] / "sharp.png"), "-o", str(out)])
    assert code == 1 and "report.csv: exists already" in err

    photo = save(tmp_path / "photo.png", scene("sharp"))
    sidecar = tmp_path / "photo.png.xmp"
    sidecar.write_text("mine")
    code, err = run_cli(["cull", str(photo), "-o", str(tmp_path / "out"), "--xmp"])
    assert code == 1 and sidecar.read_text() == "mine" and "photo.png.xmp: exists already" in err
    rows = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "exists already" in rows[0]["error"]
    code, _ = run_cli(["cull", str(photo), "-o", str(tmp_path / "out"), "--xmp", "--force"])
    assert code == 0 and 'xmp:Rating="3"' in sidecar.read_text()


def test_bad_subject_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cull", str(tmp_path), "-o", str(tmp_path / "out"), "--subject", "0.1,0.2,0.3"])
    assert exc.value.code == 2 and "x,y,w,h" in capsys.readouterr().err


def test_raw_file_is_read_through_its_largest_embedded_preview(tmp_path):
    from defocus.cull.raw import read_photo
    from defocus.errors import ImageReadError

    if __import__("importlib").util.find_spec("rawpy") is not None:
        pytest.skip("rawpy installed: it reads real RAW files, not this imitation")

    def jpeg(h, w):
        ok, data = cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))
        return data.tobytes()

    raw = tmp_path / "IMG_0001.CR2"
    raw.write_bytes(b"II*\x00 sensor data " + jpeg(16, 24) + b"\x00" * 64 + jpeg(48, 64) + b" more sensor data")
    assert read_photo(raw).shape == (48, 64, 3)
    broken = tmp_path / "IMG_0002.NEF"
    broken.write_bytes(b"no preview in here" * 10)
    with pytest.raises(ImageReadError, match="IMG_0002.NEF.*rawpy"):
        read_photo(broken)

"""``defocus serve``'s HTTP API through FastAPI's test client: the answers are the command line's maps, every error is
a 4xx JSON object with the reason, requests run one at a time, methods load once."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

import defocus  # noqa: E402
from defocus import registry  # noqa: E402
from defocus.cli import main  # noqa: E402
from defocus.io import read_image  # noqa: E402
from defocus.serve.app import create_app  # noqa: E402
from defocus.units import convert  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "flower.jpg"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="module")
def photo() -> tuple[bytes, np.ndarray]:
    return PHOTO.read_bytes(), read_image(PHOTO)


def upload(name: str, data: bytes, kind: str = "image/jpeg") -> dict:
    return {"image": (name, data, kind)}


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims ``width``×``height`` pixels (what a decompression bomb looks like
    before it is decoded)."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


def decoded(response) -> np.ndarray:
    with Image.open(io.BytesIO(response.content)) as img:
        return np.asarray(img)


def test_detect_answers_the_detectors_map(client, photo):
    data, image = photo
    expected = np.clip(defocus.load(defocus.DEFAULT_DETECTOR).predict(image), 0, 1)

    png = client.post("/api/detect", files=upload("flower.jpg", data))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert 'filename="flower_blur.png"' in png.headers["content-disposition"]
    assert png.headers["x-defocus-method"] == defocus.DEFAULT_DETECTOR
    shown = decoded(png).astype(np.int16)
    assert shown.shape == image.shape[:2]
    assert np.abs(shown - np.round(expected * 255)).max() <= 1

    npy = client.post("/api/detect?format=npy", files=upload("flower.jpg", data))
    values = np.load(io.BytesIO(npy.content), allow_pickle=False)
    assert values.dtype == np.float32 and np.allclose(values, expected, atol=1e-4)

    overlay = client.post("/api/detect?format=overlay", files=upload("flower.jpg", data))
    assert overlay.headers["content-type"] == "image/jpeg" and decoded(overlay).shape == image.shape


def test_detect_json_carries_the_files_and_the_servers_extra_fields(photo):
    data, _ = photo
    with TestClient(create_app(annotate=lambda image, blur, detector: {"verdict": "keep", "confidence": 0.75})) as c:
        answer = c.post("/api/detect?method=gradient-energy&format=json", files=upload("a b.jpg", data)).json()
        png = c.post("/api/detect?method=gradient-energy", files=upload("a b.jpg", data))
    assert (answer["method"], answer["width"], answer["height"]) == ("gradient-energy", 640, 427)
    assert (answer["verdict"], answer["confidence"]) == ("keep", 0.75)
    assert answer["files"]["blur"]["name"] == "a_b_blur.png"  # safe to put in a header
    head, encoded = answer["files"]["blur"]["url"].split(",", 1)
    assert head == "data:image/png;base64" and base64.b64decode(encoded) == png.content
    assert answer["files"]["overlay"]["url"].startswith("data:image/jpeg;base64,")


def test_estimate_answers_the_estimators_map(client, photo):
    data, image = photo
    sigma = np.maximum(defocus.load(registry.DEFAULT_ESTIMATOR).predict(image), 0)
    npy = client.post("/api/estimate?format=npy", files=upload("flower.jpg", data))
    assert npy.status_code == 200 and 'filename="flower_defocus.npy"' in npy.headers["content-disposition"]
    assert np.allclose(np.load(io.BytesIO(npy.content)), sigma, atol=1e-4)

    radius = client.post("/api/estimate?format=npy&units=radius", files=upload("flower.jpg", data))
    assert np.allclose(np.load(io.BytesIO(radius.content)), convert(sigma, "radius"), atol=1e-4)

    png = decoded(client.post("/api/estimate", files=upload("flower.jpg", data)))
    assert png.shape[0] == 427 and png.shape[1] > 640  # the map and its scale bar
    answer = client.post("/api/estimate?format=json", files=upload("flower.jpg", data)).json()
    assert answer["units"] == "sigma" and answer["max_value"] == pytest.approx(float(sigma.max()), abs=1e-4)


def test_methods_lists_the_registry(client):
    answer = client.get("/api/methods").json()
    listed = {m["name"]: m["task"] for m in answer["methods"]}
    assert listed == {name: registry.describe(name).task for name in registry.available()}
    assert answer["defaults"] == {"dbd": registry.DEFAULT_DETECTOR, "dme": registry.DEFAULT_ESTIMATOR}
    assert answer["limits"]["max_pixels"] == defocus.io.MAX_PIXELS


@pytest.mark.parametrize("path, files, status, reason", [
    ("/api/detect", upload("notes.txt", b"no picture in here\n", "text/plain"), 415, "notes.txt: not an image"),
    ("/api/detect", upload("empty.jpg", b""), 415, "empty.jpg: empty file"),
    ("/api/detect", upload("cut.jpg", PHOTO.read_bytes()[:3000]), 415, "cut.jpg: cannot decode"),
    ("/api/detect", upload("huge.png", png_with_header_size(10_000, 10_000), "image/png"), 413,
     "huge.png: 10000x10000 = 100.0 MP exceeds the limit of 64.0 MP"),
    ("/api/detect?method=no-such-method", upload("a.jpg", b"x"), 400, "unknown method 'no-such-method'"),
    (f"/api/detect?method={registry.DEFAULT_ESTIMATOR}", upload("a.jpg", b"x"), 400, "is a DME method"),
    (f"/api/estimate?method={registry.DEFAULT_DETECTOR}", upload("a.jpg", b"x"), 400, "is a DBD method"),
    ("/api/detect?format=gif", upload("a.jpg", b"x"), 400, "format: Input should be"),
    ("/api/detect", None, 400, "image: Field required"),
])
def test_errors_are_json_with_the_reason(client, path, files, status, reason):
    response = client.post(path, files=files)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert reason in response.json()["error"]


def test_an_option_sent_as_a_form_field_is_refused_not_ignored(client, photo):
    response = client.post("/api/detect", files=upload("a.jpg", photo[0]), data={"method": "lbp"})
    assert response.status_code == 400 and "query parameters" in response.json()["error"]


def test_a_decompression_bomb_is_refused_without_a_pixel_limit():
    with TestClient(create_app(max_pixels=None)) as c:
        response = c.post("/api/detect", files=upload("bomb.png", png_with_header_size(30_000, 30_000)))
    assert response.status_code == 413 and "decompression bomb" in response.json()["error"]


def test_uploads_over_the_limit_get_413_before_being_read(photo):
    data, _ = photo
    with TestClient(create_app(max_upload_bytes=50_000)) as c:
        declared = c.post("/api/detect", files=upload("flower.jpg", data))

        body = (b'--x\r\nContent-Disposition: form-data; name="image"; filename="flower.jpg"\r\n'
                b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n--x--\r\n")

        def chunks():  # no Content-Length: the limit is found while the body streams in
            for i in range(0, len(body), 8192):
                yield body[i:i + 8192]

        streamed = c.post("/api/detect", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert "content-length" not in streamed.request.headers
    for response in (declared, streamed):
        assert response.status_code == 413
        assert "larger than the limit of 0.05 MB" in response.json()["error"]


def test_unknown_paths_and_other_hosts_get_json_or_nothing(photo):
    with TestClient(create_app(allowed_hosts=["127.0.0.1"])) as c:
        assert c.get("/api/nothing").status_code == 400  # Host: testserver is not served
    with TestClient(create_app()) as c:
        missing = c.get("/api/nothing")
        page = c.get("/")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]


class SlowMethod(registry.Method):
    """Records how many predictions run at the same moment."""

    task = "dbd"
    lock = threading.Lock()
    running = peak = 0

    def predict(self, image):
        with SlowMethod.lock:
            SlowMethod.running += 1
            SlowMethod.peak = max(SlowMethod.peak, SlowMethod.running)
        time.sleep(0.2)
        with SlowMethod.lock:
            SlowMethod.running -= 1
        return np.zeros(image.shape[:2], np.float32)


def test_requests_run_one_at_a_time_and_the_method_loads_once(monkeypatch, photo):
    loads = []
    monkeypatch.setattr(registry, "load", lambda name, **kw: loads.append(name) or SlowMethod())
    statuses = []
    with TestClient(create_app()) as c:
        def ask():
            statuses.append(c.post("/api/detect?method=lbp", files=upload("a.jpg", photo[0])).status_code)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    assert statuses == [200] * 4
    assert SlowMethod.peak == 1 and elapsed >= 4 * 0.2
    assert loads == ["lbp"]


@pytest.mark.parametrize("suffix, array", [
    (".png", np.arange(48, dtype=np.uint16).reshape(4, 4, 3) * 1000),  # 16-bit colour
    (".tif", np.linspace(0, 1, 48, dtype=np.float32).reshape(4, 4, 3)),  # float samples
])
def test_an_upload_decodes_as_the_same_file_would(tmp_path, suffix, array):
    import cv2
    import tifffile

    path = tmp_path / f"x{suffix}"
    if suffix == ".png":
        cv2.imwrite(str(path), array[..., ::-1])
    else:
        tifffile.imwrite(path, array, photometric="rgb")
    assert np.array_equal(read_image(path.read_bytes(), name="x"), read_image(path))


def test_serve_without_fastapi_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "fastapi", None)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'defocus[serve]'" in err


def test_serve_on_a_port_in_use_is_a_usage_error(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "-m", "gradient-energy"]) == 2
    assert f"--port {port}: cannot listen there" in capsys.readouterr().err


@pytest.mark.parametrize("argv, reason", [
    (["-m", registry.DEFAULT_ESTIMATOR], "is a DME method"),
    (["--estimator", registry.DEFAULT_DETECTOR], "is a DBD method"),
    (["-m", "no-such-method"], "unknown method"),
])
def test_serve_refuses_bad_default_methods_before_listening(capsys, argv, reason):
    assert main(["serve", "--port", "0", *argv]) == 2
    assert reason in capsys.readouterr().err

def test_detect_json_carries_the_culling_verdict(photo):
    from defocus.cull import VERDICTS, verdict_fields

    data, _ = photo
    with TestClient(create_app(annotate=verdict_fields)) as c:
        answer = c.post("/api/detect?method=light-dffnet&format=json", files=upload("flower.jpg", data)).json()
    assert answer["verdict"] in VERDICTS and 0.5 <= answer["confidence"] <= 1
    assert set(answer["scores"]) >= {"focus_fraction", "peak_focus", "subject_focus"}

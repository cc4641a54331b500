"""The page of ``defocus serve`` in a real browser: headless Chromium (the system's, driven by selenium through the
system chromedriver; nothing is downloaded) loads the page from a ``defocus serve`` process, uploads an example
photo through the file input, and the blur map it draws must be the detector's.

Skipped where selenium, Chromium or chromedriver is missing (``.ci/run`` installs them). With
``DEFOCUS_SERVE_SCREENSHOT=FILE`` set, the screenshot is also written there, reduced to a palette PNG (how
docs/img/serve.png was made).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

import defocus  # noqa: E402
from defocus.io import read_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "flower.jpg"


def _first_found(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if os.path.isfile(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


CHROMIUM = _first_found("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = _first_found("chromedriver", "/usr/lib/chromium/chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="needs chromium and chromedriver (Debian: apt-get install chromium "
                                       "chromium-driver)")


@pytest.fixture
def server(tmp_path):
    """``defocus serve --port 0`` in a subprocess; yields the page's URL."""
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "defocus.cli", "serve", "--port", "0"], stderr=err,
                                   stdout=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (match := re.search(r"serving (http://\S+/)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "defocus serve did not start: " + log.read_text()
            time.sleep(0.2)
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser(monkeypatch):
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must not look for (or fetch) a driver of its own
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,860", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


READ_MAP = """
const canvas = document.getElementById("blur-map");
const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let red = "";
for (let i = 0; i < pixels.length; i += 4) red += String.fromCharCode(pixels[i]);
return [canvas.width, canvas.height, btoa(red)];
"""


def test_page_shows_the_detectors_map_of_an_uploaded_photo(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server)
    wait = WebDriverWait(browser, 180)
    wait.until(lambda d: d.find_element(By.ID, "detector").get_attribute("value") == defocus.DEFAULT_DETECTOR)
    browser.find_element(By.ID, "file").send_keys(str(PHOTO))
    wait.until(lambda d: d.find_element(By.ID, "result").get_attribute("data-state") == "done")

    overlay = browser.find_element(By.ID, "overlay")
    assert browser.execute_script("return [arguments[0].complete, arguments[0].naturalWidth, "
                                  "arguments[0].naturalHeight]", overlay) == [True, 640, 427]
    width, height, red = browser.execute_script(READ_MAP)
    shown = np.frombuffer(base64.b64decode(red), np.uint8).reshape(height, width)
    expected = np.round(np.clip(defocus.load(defocus.DEFAULT_DETECTOR).predict(read_image(PHOTO)), 0, 1) * 255)
    assert shown.shape == expected.shape
    assert np.abs(shown.astype(np.int16) - expected.astype(np.int16)).max() <= 1
    assert not browser.find_element(By.ID, "defocus-panel").get_attribute("hidden")  # the estimator ran too
    verdict = browser.find_element(By.ID, "verdict")  # defocus serve adds the culling verdict
    assert not verdict.get_attribute("hidden")
    assert any(v in verdict.text for v in ("sharp", "shallow-dof", "missed-focus"))
    assert "failed" not in browser.find_element(By.ID, "queue").text

    shot = tmp_path / "serve.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 0
    if os.environ.get("DEFOCUS_SERVE_SCREENSHOT"):
        from PIL import Image

        with Image.open(shot) as img:
            img.convert("RGB").quantize(colors=128).save(os.environ["DEFOCUS_SERVE_SCREENSHOT"], optimize=True)

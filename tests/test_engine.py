"""The local engine: decoding ahead and writing behind in background threads changes nothing but the speed."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import folder_bytes
import defocus.io
from defocus import registry
from defocus.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("defocus: [") or "error:" in line]


def test_prefetch_writes_what_the_sequential_path_writes(examples_and_a_bad_file, tmp_path, capsys):
    runs = {}
    for prefetch in ("0", "2"):
        out = tmp_path / f"out{prefetch}"
        code = main(["detect", str(examples_and_a_bad_file), "-o", str(out), "--npy", "--prefetch", prefetch])
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        runs[prefetch] = (folder_bytes(out), [line.split(": wrote")[0] for line in _lines(err)])
    assert runs["0"][0] == runs["2"][0] and len(runs["2"][0]) == 5 * 3
    assert runs["0"][1] == runs["2"][1]  # the same lines in the same order
    lines = runs["2"][1]
    assert [line.split("]")[0] for line in lines if line.startswith("defocus: [")] == \
        [f"defocus: [{i}/6" for i in range(1, 7)]
    assert any("broken.jpg" in line and "error" in line for line in lines)


def test_estimate_with_prefetch_writes_what_the_sequential_path_writes(tmp_path):
    photo = str(EXAMPLES / "flower.jpg")
    for prefetch in ("0", "2"):
        assert main(["estimate", photo, "-o", str(tmp_path / prefetch), "--prefetch", prefetch]) == 0
    assert folder_bytes(tmp_path / "0") == folder_bytes(tmp_path / "2")


def test_no_overwrite_without_force_with_prefetch(tmp_path, capsys):
    photo = str(EXAMPLES / "tulips.jpg")
    out = tmp_path / "o"
    assert main(["detect", photo, "-o", str(out), "-m", "lbp"]) == 0
    (out / "tulips_blur.png").write_bytes(b"mine")
    assert main(["detect", photo, "-o", str(out), "-m", "lbp"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / "tulips_blur.png").read_bytes() == b"mine"
    assert main(["detect", photo, "-o", str(out), "-m", "lbp", "--force"]) == 0
    assert (out / "tulips_blur.png").read_bytes() != b"mine"


class _Recorder:
    """A fake method and slow reads/writes that record how far decoding and writing are ahead of computing."""

    def __init__(self, monkeypatch, *, stop_at: int | None = None):
        self.read = self.computed = self.written = 0
        self.read_threads: set[str] = set()
        self.ahead: list[int] = []   # photos decoded but not yet computed, when a compute starts
        self.behind: list[int] = []  # photos computed but not yet written, when a compute starts
        self.stop_at = stop_at
        lock = threading.Lock()
        real_read, real_png = defocus.io.read_image, defocus.io.write_png8
        recorder = self

        def slow_read(path, **kw):
            time.sleep(0.01)
            image = real_read(path, **kw)
            with lock:
                recorder.read += 1
                recorder.read_threads.add(threading.current_thread().name)
            return image

        def slow_png(path, values, **kw):
            time.sleep(0.03)
            result = real_png(path, values, **kw)
            with lock:
                recorder.written += 1
            return result

        class Fake:
            def predict(self, image):
                with lock:
                    recorder.ahead.append(recorder.read - recorder.computed - 1)
                    recorder.behind.append(recorder.computed - recorder.written)
                if recorder.stop_at is not None and recorder.computed == recorder.stop_at:
                    raise KeyboardInterrupt
                time.sleep(0.005)
                recorder.computed += 1
                return np.full(image.shape[:2], 0.5, np.float32)

        monkeypatch.setattr(defocus.io, "read_image", slow_read)
        monkeypatch.setattr(defocus.io, "write_png8", slow_png)
        monkeypatch.setattr(registry, "load_from_args", lambda *a, **k: Fake())


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray((rng.random((24, 32, 3)) * 255).astype(np.uint8)).save(folder / f"p{i:02d}.png")
    return folder


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetch_depth_bounds_the_photos_held(tmp_path, monkeypatch, depth):
    rec = _Recorder(monkeypatch)
    photos = _photos(tmp_path / "photos", 16)
    assert main(["detect", str(photos), "-o", str(tmp_path / "o"), "--prefetch", str(depth)]) == 0
    assert rec.computed == rec.read == rec.written == 16
    assert rec.read_threads == {"defocus-read_0"}  # decoded in the background thread
    assert max(rec.ahead) <= depth and max(rec.behind) <= depth
    assert max(rec.behind) >= 1  # the slow writes did fall behind: writing overlapped computing


def test_interrupt_leaves_whole_photos_and_no_temporaries(tmp_path, monkeypatch):
    _Recorder(monkeypatch, stop_at=5)
    photos = _photos(tmp_path / "photos", 12)
    out = tmp_path / "o"
    assert main(["detect", str(photos), "-o", str(out), "--prefetch", "2"]) == 130
    assert not list(out.glob(".*.part"))
    stems = {p.name.split("_")[0] for p in out.iterdir()}
    assert stems <= {f"p{i:02d}" for i in range(5)}
    for stem in stems:  # a photo's files are there together or not at all
        assert (out / f"{stem}_blur.png").exists() and (out / f"{stem}_overlay.jpg").exists()


def test_ray_engine_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if it were not installed
    assert main(["detect", str(EXAMPLES / "tulips.jpg"), "-o", str(tmp_path / "o"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'defocus[ray]'" in err[0]
    assert not (tmp_path / "o").exists()


def test_ray_options_need_the_ray_engine(tmp_path, capsys):
    assert main(["detect", str(EXAMPLES / "tulips.jpg"), "-o", str(tmp_path / "o"), "--num-actors", "2"]) == 2
    assert "--num-actors: only with --engine ray" in capsys.readouterr().err


def test_a_command_with_one_process_callback_still_runs(tmp_path, capsys):
    """Commands that read, compute and write in one ``process(path, files, stage)`` keep working, photo by photo."""
    from defocus.cli import run_batch
    from defocus.io import read_image, write_png8

    def process(path, files, stage):
        write_png8(files[0], read_image(path).mean(axis=2), stage=stage)

    photos = [str(EXAMPLES / "tulips.jpg"), str(tmp_path / "missing.jpg")]
    code = run_batch(photos, tmp_path / "o", lambda stem: [tmp_path / "o" / f"{stem}_grey.png"], process,
                     force=False, desc="grey")
    assert code == 1 and (tmp_path / "o" / "tulips_grey.png").exists()
    assert "missing.jpg: no such file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["deblur", "magnify"])
def test_commands_without_engines_do_not_offer_them(command, tmp_path, capsys):
    # These run photo by photo in this process; an --engine they would ignore is refused instead.
    with pytest.raises(SystemExit) as exc:
        main([command, "examples/flower.jpg", "-o", str(tmp_path), "--engine", "ray"])
    assert exc.value.code == 2
    assert "--engine" in capsys.readouterr().err

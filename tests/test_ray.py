"""The Ray engine writes what the local engine writes, reports a bad photo without stopping, and resumes."""

import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from conftest import folder_bytes  # noqa: E402
from defocus.cli import main  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def ray_instance():
    # Light: no dashboard, a small object store; CPUs enough for one actor with this process's torch threads.
    ray.init(num_cpus=max(2, torch.get_num_threads()), include_dashboard=False, object_store_memory=250 * 2**20,
             log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_writes_the_local_files_and_resumes(ray_instance, examples_and_a_bad_file, tmp_path, capsys):
    photos = examples_and_a_bad_file
    # The actor runs the method with as many threads as this process, so even float rounding is the same.
    threads = str(torch.get_num_threads())
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert main(["detect", str(photos), "-o", str(local), "--npy"]) == 1
    capsys.readouterr()
    ray_args = ["detect", str(photos), "-o", str(distributed), "--npy", "--engine", "ray", "--num-actors", "1",
                "--num-cpus", threads]
    assert main(ray_args) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("defocus: error:")]
    assert any("broken.jpg" in line for line in errors) and "Traceback" not in err
    assert folder_bytes(distributed) == folder_bytes(local) and len(folder_bytes(local)) == 5 * 3

    # A rerun computes only what is missing; the bad file is reported again.
    for p in distributed.glob("flower_*"):
        p.unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in distributed.iterdir()}
    assert main(ray_args) == 1
    err = capsys.readouterr().err
    assert "skipping 4 photo(s)" in err and any("broken.jpg" in line for line in err.splitlines())
    assert folder_bytes(distributed) == folder_bytes(local)
    assert all(distributed.joinpath(name).stat().st_mtime_ns == t for name, t in kept.items())


def test_ray_engine_estimate_one_photo(ray_instance, tmp_path, capsys):
    photo = str(EXAMPLES / "tulips.jpg")
    assert main(["estimate", photo, "-o", str(tmp_path / "ray"), "--engine", "ray", "--num-actors", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["tulips_defocus.npy", "tulips_defocus.png"]
    assert main(["estimate", photo, "-o", str(tmp_path / "ray"), "--engine", "ray"]) == 0  # all done: skipped
    assert "skipping 1 photo(s)" in capsys.readouterr().err


def test_ray_engine_culls_as_the_local_engine_does(ray_instance, examples_and_a_bad_file, tmp_path, capsys):
    photos = examples_and_a_bad_file
    # The rows come back from the actor as JSON: the reports, sorted the same, hold the same verdicts and scores.
    threads = str(torch.get_num_threads())
    local, sequential, distributed = tmp_path / "A", tmp_path / "A0", tmp_path / "B"
    assert main(["cull", str(photos), "-o", str(local)]) == 1
    assert main(["cull", str(photos), "-o", str(sequential), "--prefetch", "0"]) == 1
    assert main(["cull", str(photos), "-o", str(distributed), "--engine", "ray", "--num-actors", "1",
                 "--num-cpus", threads]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    rows = json.loads((local / "report.json").read_text())
    bad = str(photos / "broken.jpg")
    assert len(rows) == 6 and [r["path"] for r in rows if r["error"]] == [bad]
    assert all(r["verdict"] for r in rows if not r["error"])
    for other in (sequential, distributed):
        assert json.loads((other / "report.json").read_text()) == rows
        assert folder_bytes(other / "thumbs") == folder_bytes(local / "thumbs")
    assert len(folder_bytes(local / "thumbs")) == 5

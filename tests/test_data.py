"""Dataset loaders: layouts, polarity, splits and errors, on the real samples in shared/ and on generated fixtures."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from defocus.data import cuhk_split, dataset_kinds, open_dataset, read_mask, xu100_names
from defocus.errors import DatasetError, ImageReadError

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL = SHARED / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="shared/data/real not present beside the repo")


# --------------------------------------------------------------------------------------------------------------------
# Fixture writers


def _photo(path: Path, h: int = 12, w: int = 16, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _mask(path: Path, grey: np.ndarray, mode: str = "L") -> Path:
    """Write a grey mask (uint8 H×W) as an L, RGBA, palette or 1-bit image, or as .npy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.asarray(grey, dtype=np.uint8)
    if path.suffix == ".npy":
        np.save(path, grey)
        return path
    img = Image.fromarray(grey, mode="L")
    if mode == "RGBA":
        img = Image.merge("RGBA", (img, img, img, Image.new("L", img.size, 255)))
    elif mode == "P":
        img = img.convert("P")
    elif mode == "1":
        img = img.convert("1")
    img.save(path)
    return path


def _halves(h: int = 12, w: int = 16, left: int = 255, right: int = 0) -> np.ndarray:
    m = np.full((h, w), right, np.uint8)
    m[:, : w // 2] = left
    return m


def _laplacian_energy(img: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.abs(cv2.Laplacian(grey, cv2.CV_32F, ksize=3))


# --------------------------------------------------------------------------------------------------------------------
# Registry


def test_kinds_and_unknowns(tmp_path):
    assert dataset_kinds() == ["cuhk", "dut", "ctcug", "ebd", "rtf", "folder", "synth"]
    with pytest.raises(DatasetError, match="unknown dataset kind 'nope'"):
        open_dataset("nope", tmp_path)
    with pytest.raises(DatasetError, match="unknown option colour for dataset 'cuhk'"):
        open_dataset("cuhk", tmp_path, colour="red")
    with pytest.raises(DatasetError, match=r"split='val'"):
        open_dataset("cuhk", tmp_path, split="val")


def test_split_file():
    test, train = cuhk_split("test"), cuhk_split("train")
    assert len(test) == 100 == len(set(test)) and len(train) == 604
    assert test[:5] == ["out_of_focus0037", "out_of_focus0117", "out_of_focus0126", "out_of_focus0127",
                        "out_of_focus0132"]
    assert not set(test) & set(train)
    assert set(test) | set(train) == {f"out_of_focus{i:04d}" for i in range(1, 705)}
    assert train == sorted(train)
    assert xu100_names()["1"] == "out_of_focus0037" and len(xu100_names()) == 100


# --------------------------------------------------------------------------------------------------------------------
# Real samples


@needs_real
def test_real_cuhk_raw_polarity():
    ds = open_dataset("cuhk", REAL / "cuhk_samples")
    assert (ds.name, ds.task, ds.kind) == ("CUHK", "dbd", "cuhk")
    assert ds.names == ["motion0138", "motion0239", "out_of_focus0223", "out_of_focus0284"]
    for s in ds:
        img, mask = s.image(), s.blur_mask()
        assert mask.dtype == np.float32 and mask.shape == img.shape[:2]
        assert set(np.unique(mask)) <= {0.0, 1.0}
        # The HiFST authors' own maps are sharpness (high = in focus): low where our mask says blurred.
        hifst = np.asarray(Image.open(REAL / "cuhk_samples" / "hifst_official" / f"{s.name}_FinalMap.png").convert("L"),
                           np.float32) / 255
        assert hifst[mask > 0.5].mean() < 0.5 * hifst[mask < 0.5].mean()
        if s.name.startswith("out_of_focus"):
            lap = _laplacian_energy(img)
            assert lap[mask < 0.5].mean() > 1.5 * lap[mask > 0.5].mean()


@needs_real
def test_real_cuhk_splits_and_subsets():
    root = REAL / "cuhk_samples"
    assert open_dataset("cuhk", root, subset="motion").names == ["motion0138", "motion0239"]
    assert open_dataset("cuhk", root, subset="defocus").name == "CUHK-defocus"
    test = open_dataset("cuhk", root, split="test", partial="true")  # strings as from --dataset-option
    assert (test.name, test.names, test[0].split) == ("CUHK-TE-1", ["out_of_focus0284"], "test")
    train = open_dataset("cuhk", root, split="train", partial=True)
    assert (train.name, train.names, train[0].split) == ("CUHK-TR-1", ["out_of_focus0223"], "train")
    with pytest.raises(DatasetError, match=r"99 of the 100 CUHK-TE-1 photos are missing .*partial=true"):
        open_dataset("cuhk", root, split="test")
    with pytest.raises(DatasetError, match="subset='motion'"):
        open_dataset("cuhk", root, split="test", subset="motion")


@needs_real
def test_real_cuhk_te1_320_is_flipped_to_blur_polarity():
    root = REAL / "cuhk_te1_320"
    ds = open_dataset("cuhk", root)  # layout detected from the K.bmp names
    assert ds.name == "CUHK-TE-1-320"
    assert ds.names == ["out_of_focus0037", "out_of_focus0117", "out_of_focus0126", "out_of_focus0127",
                        "out_of_focus0132"]
    assert [s.image_path.name for s in ds] == [f"{k}.bmp" for k in range(1, 6)]
    for k, s in enumerate(ds, 1):
        stored = np.asarray(Image.open(root / "gt" / f"{k}.bmp").convert("L"), np.float32) / 255
        mask = s.blur_mask()
        np.testing.assert_allclose(mask, 1 - stored, atol=1e-6)
        assert 0 < np.mean((mask > 0) & (mask < 1))  # grey edges kept, not binarised
        lap = _laplacian_energy(s.image())
        assert lap[mask < 0.5].mean() > 1.5 * lap[mask > 0.5].mean()
        raw_gt = SHARED / "data" / "masks" / "cuhk_gt" / f"{s.name}.png"
        if raw_gt.exists():  # the original mask (255 = blurred) of the same photo, resized like the distribution
            raw = np.asarray(Image.open(raw_gt).convert("L").resize((320, 320), Image.BILINEAR), np.float32) / 255
            assert np.mean((raw > 0.5) == (mask > 0.5)) > 0.995
    assert open_dataset("cuhk", root, names="file").names == ["1", "2", "3", "4", "5"]
    with pytest.raises(DatasetError, match=r"95 of the 100 .*first: 6 = out_of_focus"):
        open_dataset("cuhk", root, split="test")
    assert len(open_dataset("cuhk", root, split="test", partial=True)) == 5
    with pytest.raises(DatasetError, match="test split"):
        open_dataset("cuhk", root, split="train")


@needs_real
def test_real_rtf():
    root = REAL / "rtf_sample"
    ds = open_dataset("rtf", root)
    assert (ds.name, ds.task, ds.names) == ("RTF", "dme", ["image_01"])
    s = ds[0]
    radius = s.radius()
    np.testing.assert_array_equal(radius, np.load(root / "gt" / "map_01.npy"))
    assert s.blur_mask() is None and s.image().shape == (360, 360, 3)
    # RTF's own table, nearest row (as the DMENet/Karaali evaluations do): on the 0.25 px grid it is exact.
    table = scipy.io.loadmat(root / "convertion.mat")["convertion"]
    rows = np.abs(table[:, 1][None, :] - radius.reshape(-1, 1)).argmin(axis=1)
    np.testing.assert_allclose(s.sigma(), table[rows, 0].reshape(radius.shape), atol=1e-6)


@needs_real
def test_rtf_mat_only_and_flat_layouts(tmp_path):
    src = REAL / "rtf_sample"
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "image_01.png").write_bytes((src / "images" / "image_01.png").read_bytes())
    (flat / "map_01.mat").write_bytes((src / "gt" / "map_01.mat").read_bytes())
    (flat / "convertion.mat").write_bytes((src / "convertion.mat").read_bytes())
    ds = open_dataset("rtf", flat)
    assert ds.names == ["image_01"] and ds[0].target_path.name == "map_01.mat"
    np.testing.assert_allclose(ds[0].radius(), np.load(src / "gt" / "map_01.npy"), atol=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# CUHK fixtures


def _cuhk(root: Path, stems, img_dir="image", gt_dir="gt", modes=None):
    modes = modes or {}
    for i, stem in enumerate(stems):
        _photo(root / img_dir / f"{stem}.jpg", seed=i)
        _mask(root / gt_dir / f"{stem}.png", _halves(), modes.get(stem, "L"))
    return root


def test_cuhk_raw_layout_and_mask_modes(tmp_path):
    root = _cuhk(tmp_path, ["out_of_focus0037", "out_of_focus0001", "motion0002", "motion0010"],
                 modes={"out_of_focus0001": "RGBA", "motion0002": "P", "motion0010": "1"})
    grey = _halves(left=200, right=30)
    _mask(root / "gt" / "out_of_focus0037.png", grey)
    ds = open_dataset("cuhk", root)
    assert ds.names == ["motion0002", "motion0010", "out_of_focus0001", "out_of_focus0037"]
    expected = _halves().astype(np.float32) / 255  # 255 = blurred stays 1
    for s in ds[:3]:
        np.testing.assert_array_equal(s.blur_mask(), expected)
    np.testing.assert_allclose(ds.by_name("out_of_focus0037").blur_mask(), grey / 255.0, atol=1e-6)
    assert [s.split for s in ds] == [None, None, "train", "test"]
    assert open_dataset("cuhk", root, split="test", partial=True).names == ["out_of_focus0037"]
    assert open_dataset("cuhk", root, split="train", partial=True).names == ["out_of_focus0001"]
    img = ds[0].image()
    assert img.dtype == np.float32 and img.shape == (12, 16, 3)


def test_cuhk_complete_test_split_keeps_list_order(tmp_path):
    test = cuhk_split("test")
    for i, stem in enumerate(test):
        _photo(tmp_path / "images" / f"{stem}.jpg", 4, 4, seed=i)
        _mask(tmp_path / "masks" / f"{stem}.png", np.zeros((4, 4)))
    _cuhk(tmp_path, ["out_of_focus0001", "motion0001"], "images", "masks")
    ds = open_dataset("cuhk", tmp_path, split="test")
    assert ds.names == test and ds.name == "CUHK-TE-1"
    assert len(open_dataset("cuhk", tmp_path)) == 102


def test_cuhk_authors_archives_layout(tmp_path):
    # BlurDatasetImage.zip and BlurDatasetGT.zip unpacked into folders of their own, root = their parent.
    for i, stem in enumerate(["out_of_focus0002", "motion0003"]):
        _photo(tmp_path / "BlurDatasetImage" / "image" / f"{stem}.jpg", seed=i)
        _mask(tmp_path / "BlurDatasetGT" / "gt" / f"{stem}.png", _halves())
    ds = open_dataset("cuhk", tmp_path)
    assert ds.names == ["motion0003", "out_of_focus0002"]
    assert "BlurDatasetImage/image/ + BlurDatasetGT/gt/" in ds.layout
    # The same archives unpacked side by side (image/ + gt/) inside a parent folder, root one level up.
    _cuhk(tmp_path / "other" / "CUHK", ["out_of_focus0005"])
    assert open_dataset("cuhk", tmp_path / "other").names == ["out_of_focus0005"]


def test_cuhk_train_test_folders_and_mixed_folder(tmp_path):
    _cuhk(tmp_path / "a" / "train", ["out_of_focus0001", "out_of_focus0003"])
    _cuhk(tmp_path / "a" / "test", ["out_of_focus0037", "out_of_focus0002"])
    ds = open_dataset("cuhk", tmp_path / "a")
    assert ds.names == ["out_of_focus0001", "out_of_focus0002", "out_of_focus0003", "out_of_focus0037"]
    # our split comes from the BTBNet list, not from the folder names
    assert open_dataset("cuhk", tmp_path / "a", split="test", partial=True).names == ["out_of_focus0037"]
    # photos and masks together in one folder (BR2Net's Imgs/)
    _cuhk(tmp_path / "b", ["out_of_focus0037", "motion0001"], "Imgs", "Imgs")
    ds = open_dataset("cuhk", tmp_path / "b")
    assert ds.names == ["motion0001", "out_of_focus0037"]
    assert all(s.image_path.suffix == ".jpg" and s.target_path.suffix == ".png" for s in ds)


def test_cuhk_xu100_layouts(tmp_path):
    edge = _halves(left=255, right=0)
    edge[:, 7] = 128  # a grey edge as in the distribution
    for k in (2, 1, 10):
        _photo(tmp_path / "xu100-source" / f"{k}.bmp", seed=k)
        _mask(tmp_path / "xu100-gt" / f"{k}.bmp", edge)
    ds = open_dataset("cuhk", tmp_path)
    names = xu100_names()
    assert ds.names == [names["1"], names["2"], names["10"]]
    np.testing.assert_allclose(ds[0].blur_mask(), 1 - edge / 255.0, atol=1e-6)
    assert ds[0].target == "focus"
    # EFENet's folders test-xu/img + test-xu/label, found one level down
    for k in (3,):
        _photo(tmp_path / "e" / "test-xu" / "img" / f"{k}.bmp", seed=k)
        _mask(tmp_path / "e" / "test-xu" / "label" / f"{k}.bmp", edge)
    assert open_dataset("cuhk", tmp_path / "e", names="file").names == ["3"]
    # a forced layout wins over detection
    raw = open_dataset("cuhk", tmp_path / "e", layout="raw")
    assert raw[0].target == "blur"
    _photo(tmp_path / "xu100-source" / "101.bmp")
    _mask(tmp_path / "xu100-gt" / "101.bmp", edge)
    with pytest.raises(DatasetError, match="101.bmp: not a file of the 320 px CUHK-TE-1"):
        open_dataset("cuhk", tmp_path)


# --------------------------------------------------------------------------------------------------------------------
# DUT, CTCUG, EBD


def _pairs(img_dir: Path, gt_dir: Path, stems, grey=None, img_ext=".jpg", gt_ext=".bmp"):
    for i, stem in enumerate(stems):
        _photo(img_dir / f"{stem}{img_ext}", seed=i)
        _mask(gt_dir / f"{stem}{gt_ext}", _halves() if grey is None else grey)


def test_dut_official_layout_and_polarity(tmp_path):
    d = tmp_path / "DUT-DBD_Dataset"
    _pairs(d / "DUT600S_Training", d / "DUT600GT_Training", ["t1", "t2", "t10"])
    _pairs(d / "DUT500S-Testing", d / "DUT500GT-Testing", ["e1", "e2"])
    for root in (tmp_path, d):
        tr, te, both = (open_dataset("dut", root, split=s) for s in ("train", "test", "all"))
        assert (tr.name, tr.names) == ("DUT-TR", ["t1", "t2", "t10"])
        assert (te.name, te.names) == ("DUT-TE", ["e1", "e2"])
        assert len(both) == 5 and both.name == "DUT"
        assert {s.split for s in tr} == {"train"} and {s.split for s in te} == {"test"}
    # 255 = in focus in DUT: the white left half is sharp, so blur = 0 there
    np.testing.assert_array_equal(te[0].blur_mask(), 1 - _halves().astype(np.float32) / 255)


def test_dut_ddffnet_layout_and_name_clash(tmp_path):
    d = tmp_path / "DUT" / "DUT-DBD_Dataset"
    _pairs(d / "image", d / "gt", ["1", "2"])  # D-DFFNet's test set
    _pairs(d / "DUT600S_Training", d / "DUT600GT_Training", ["1", "3"])
    root = tmp_path / "DUT"
    assert open_dataset("dut", root, split="test").names == ["1", "2"]
    assert open_dataset("dut", root, split="train").names == ["1", "3"]
    assert sorted(open_dataset("dut", root).names) == ["2", "3", "test-1", "train-1"]


def test_dut_without_split_folders(tmp_path):
    _pairs(tmp_path / "DUTDefocus" / "image", tmp_path / "DUTDefocus" / "gt", ["a"], gt_ext=".png")
    assert open_dataset("dut", tmp_path).names == ["a"]
    with pytest.raises(DatasetError, match="no DUT test folders .*use split=all"):
        open_dataset("dut", tmp_path, split="test")
    _pairs(tmp_path / "z" / "dut500-source", tmp_path / "z" / "dut500-gt", ["1"], img_ext=".bmp")
    assert open_dataset("dut", tmp_path / "z", split="test").names == ["1"]


def test_ctcug(tmp_path):
    _pairs(tmp_path / "CTCUG" / "CTCUG_images", tmp_path / "CTCUG" / "CTCUG_gt", ["5", "40"], gt_ext=".png")
    ds = open_dataset("ctcug", tmp_path)
    assert (ds.name, ds.names) == ("CTCUG", ["5", "40"])
    np.testing.assert_array_equal(ds[0].blur_mask(), _halves().astype(np.float32) / 255)  # 255 = blurred


def test_ebd_all_sharp_and_subsets(tmp_path, monkeypatch):
    from defocus.data import dbd

    root = tmp_path / "EBD"
    _pairs(root / "image", root / "gt", ["1", "2", "3"], gt_ext=".png")
    _pairs(root / "image", root / "gt", ["4", "5"], grey=np.full((12, 16), 255), gt_ext=".png")  # all sharp
    ds = open_dataset("ebd", root)
    assert ds.names == ["1", "2", "3", "4", "5"]
    for s in ds[3:]:
        mask = s.blur_mask()
        assert mask.shape == (12, 16) and mask.max() == 0.0
    np.testing.assert_array_equal(ds[0].blur_mask(), 1 - _halves().astype(np.float32) / 255)
    with pytest.raises(DatasetError, match="needs the complete EBD"):
        open_dataset("ebd", root, subset="shallow")
    monkeypatch.setattr(dbd, "EBD_SIZE", 5)
    monkeypatch.setattr(dbd, "EBD_WIDE", 2)
    shallow, wide = open_dataset("ebd", root, subset="shallow"), open_dataset("ebd", root, subset="wide")
    assert (shallow.name, shallow.names) == ("EBD(3)", ["1", "2", "3"])
    assert wide.names == ["4", "5"]


# --------------------------------------------------------------------------------------------------------------------
# Generic folders


def test_folder_polarities_and_defocus_maps(tmp_path):
    _pairs(tmp_path / "images", tmp_path / "masks", ["b", "a"], img_ext=".png", gt_ext=".png")
    blur = open_dataset("folder", tmp_path, polarity="blur")
    focus = open_dataset("folder", tmp_path, polarity="focus")
    assert blur.names == ["a", "b"] and blur.name == tmp_path.name
    np.testing.assert_array_equal(blur[0].blur_mask(), 1 - focus[0].blur_mask())
    # defocus's own convention (255 = out of focus) unless told otherwise
    np.testing.assert_array_equal(open_dataset("folder", tmp_path)[0].blur_mask(), blur[0].blur_mask())
    with pytest.raises(DatasetError, match="not both"):
        open_dataset("folder", tmp_path, polarity="blur", units="sigma")
    with pytest.raises(DatasetError, match="polarity='sideways'"):
        open_dataset("folder", tmp_path, polarity="sideways")
    sigma = np.full((12, 16), 1.25, np.float32)
    (tmp_path / "sigma").mkdir()
    np.save(tmp_path / "sigma" / "a.npy", sigma)
    np.save(tmp_path / "sigma" / "b.npy", sigma * 2)
    dme = open_dataset("folder", tmp_path, units="sigma")
    assert dme.task == "dme" and dme[0].blur_mask() is None
    np.testing.assert_array_equal(dme[1].sigma(), sigma * 2)
    from defocus.units import sigma_to_radius

    np.testing.assert_allclose(dme[0].radius(), sigma_to_radius(sigma))
    # other folder names, npy masks with 0/255 values
    _photo(tmp_path / "photos" / "c.jpg")
    _mask(tmp_path / "labels" / "c_gt.npy", _halves())
    ds = open_dataset("folder", tmp_path, polarity="blur", images="photos", masks="labels")
    np.testing.assert_array_equal(ds[0].blur_mask(), _halves() / 255.0)


def test_synth_output_is_a_folder_dataset(tmp_path):
    _pairs(tmp_path / "images", tmp_path / "masks", ["synth_000000"], img_ext=".png", gt_ext=".png")
    (tmp_path / "radius").mkdir()
    np.save(tmp_path / "radius" / "synth_000000.npy", np.full((12, 16), 3.0, np.float32))
    assert open_dataset("folder", tmp_path, polarity="blur").task == "dbd"
    ds = open_dataset("folder", tmp_path, units="radius")
    np.testing.assert_allclose(ds[0].sigma(), 1.65, atol=1e-6)  # RTF table: r = 3.0 px <-> sigma = 1.65 px


# --------------------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("kind", ["cuhk", "dut", "ctcug", "ebd", "rtf"])
def test_missing_and_empty_roots(tmp_path, kind):
    with pytest.raises(DatasetError, match=f"{tmp_path / 'nope'}: no such folder"):
        open_dataset(kind, tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        open_dataset(kind, tmp_path / "file")
    if kind != "rtf":
        with pytest.raises(DatasetError, match=r"no .* photo and ground-truth folders found"):
            open_dataset(kind, tmp_path)
    _photo(tmp_path / "images" / "a.jpg")
    if kind == "rtf":
        with pytest.raises(DatasetError, match="no RTF ground-truth folder"):
            open_dataset(kind, tmp_path)
    else:
        with pytest.raises(DatasetError, match=r"images: .* photos but no ground-truth folder"):
            open_dataset(kind, tmp_path)


def test_missing_ground_truth(tmp_path):
    root = _cuhk(tmp_path, ["out_of_focus0001", "out_of_focus0002", "out_of_focus0003"])
    (root / "gt" / "out_of_focus0002.png").unlink()
    with pytest.raises(DatasetError) as err:
        open_dataset("cuhk", root)
    msg = str(err.value)
    assert "\n" not in msg and str(root / "gt") in msg and "1 of 3 photos" in msg and "out_of_focus0002.jpg" in msg
    ds = open_dataset("cuhk", root, allow_unlabelled=True)
    assert ds[1].target_path is None and ds[1].blur_mask() is None and ds[0].blur_mask() is not None
    # photos alone
    _photo(tmp_path / "alone" / "images" / "x.jpg")
    with pytest.raises(DatasetError, match="pass allow_unlabelled=true"):
        open_dataset("folder", tmp_path / "alone", polarity="blur")
    assert open_dataset("folder", tmp_path / "alone", polarity="blur", allow_unlabelled=True)[0].target_path is None
    assert open_dataset("ebd", tmp_path / "alone", allow_unlabelled=True).names == ["x"]
    (tmp_path / "empty" / "image").mkdir(parents=True)
    (tmp_path / "empty" / "gt").mkdir()
    with pytest.raises(DatasetError, match="image: no images in this folder"):
        open_dataset("ctcug", tmp_path / "empty")


def test_split_selection_ignores_unneeded_missing_masks(tmp_path):
    root = _cuhk(tmp_path, ["out_of_focus0037", "out_of_focus0001"])
    (root / "gt" / "out_of_focus0001.png").unlink()
    assert open_dataset("cuhk", root, split="test", partial=True).names == ["out_of_focus0037"]
    with pytest.raises(DatasetError, match="no CUHK ground truth"):
        open_dataset("cuhk", root, split="train", partial=True)


def test_read_mask_formats_and_errors(tmp_path):
    arr16 = (np.arange(12 * 16).reshape(12, 16) * 300).astype(np.uint16)
    Image.fromarray(arr16).save(tmp_path / "m16.png")
    np.testing.assert_allclose(read_mask(tmp_path / "m16.png"), arr16 / 65535.0, atol=1e-6)
    np.save(tmp_path / "f.npy", np.full((3, 4), 0.25, np.float32))
    assert read_mask(tmp_path / "f.npy").max() == pytest.approx(0.25)
    scipy.io.savemat(tmp_path / "m.mat", {"gt": np.eye(3, dtype=np.uint8) * 255})
    np.testing.assert_array_equal(read_mask(tmp_path / "m.mat"), np.eye(3))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="bad.png"):
        read_mask(tmp_path / "bad.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file"):
        read_mask(tmp_path / "empty.png")


def test_dataset_is_a_sequence(tmp_path):
    ds = open_dataset("cuhk", _cuhk(tmp_path, ["out_of_focus0001", "out_of_focus0002", "motion0001"]))
    part = ds[1:]
    assert type(part) is type(ds) and part.names == ["out_of_focus0001", "out_of_focus0002"]
    assert ds[-1].name == "out_of_focus0002" and list(ds)[0].name == "motion0001"
    with pytest.raises(KeyError):
        ds.by_name("missing")
    assert "CUHK" in repr(ds)


def test_upper_case_suffix_and_gt_endings(tmp_path):
    # five CUHK-TE-1 photos are "out_of_focus0026.JPG" etc. in the original archive and in the split list
    _photo(tmp_path / "image" / "out_of_focus0026.JPG")
    _mask(tmp_path / "gt" / "out_of_focus0026.png", _halves())
    _photo(tmp_path / "image" / "out_of_focus0001.jpg")
    _mask(tmp_path / "gt" / "out_of_focus0001_gt.png", _halves())
    _mask(tmp_path / "gt" / "out_of_focus0001.bmp", np.zeros((12, 16)))  # exact stem wins over a _gt ending
    ds = open_dataset("cuhk", tmp_path)
    assert ds.names == ["out_of_focus0001", "out_of_focus0026"]
    assert ds[0].target_path.name == "out_of_focus0001.bmp"
    assert open_dataset("cuhk", tmp_path, split="test", partial=True).names == ["out_of_focus0026"]


# --------------------------------------------------------------------------------------------------------------------
# The benchmarks' synthetic test set, and the one pairing rule


def test_synth_kind_is_the_benchmark_test_set(shared_dir):
    from defocus.synth import SynthDataset

    ds = open_dataset("synth", None, n=3)
    assert (ds.name, ds.task, ds.names) == ("synth_test", "dbd", ["synth_0000", "synth_0001", "synth_0002"])
    scene = SynthDataset(60, size=320, seed=777, split="test").sample(2)  # what docs/benchmarks.md measured
    np.testing.assert_array_equal(ds[2].image(), scene.image)
    np.testing.assert_array_equal(ds[2].blur_mask(), scene.blur_mask)
    dme = open_dataset("synth", str(shared_dir), n="2", task="dme")  # strings as from --dataset-option
    np.testing.assert_array_equal(dme[1].sigma(), SynthDataset(2, size=320, seed=777, split="test").sample(1).sigma)
    assert dme.protocol_defaults == {"drop_right": 0, "gt_units": "sigma", "lookup": "linear"}
    assert ds.protocol_defaults == {} and dme[:1].protocol_defaults == dme.protocol_defaults
    with pytest.raises(DatasetError, match="n=0"):
        open_dataset("synth", None, n=0)


def test_one_suffix_list_and_one_pairing_rule_for_gt_folders_and_loaders(tmp_path):
    from defocus.data.layout import MAP_SUFFIXES, MASK_SUFFIXES, index_files, match_key
    from defocus.evaluate.command import DBD_EXTS, DME_EXTS, index_folder
    from defocus.io import ARRAY_SUFFIXES, IMAGE_SUFFIXES
    from defocus.synth import sources

    assert set(MASK_SUFFIXES) == set(DBD_EXTS) == set(IMAGE_SUFFIXES) | set(ARRAY_SUFFIXES)
    assert DME_EXTS == MAP_SUFFIXES and set(ARRAY_SUFFIXES) <= set(MAP_SUFFIXES)
    assert sources.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    gt = tmp_path / "gt"
    gt.mkdir()
    for name in ("map_01.png", "map_01.npy", "image_2.bmp", "notes.png", ".hidden_3.png"):
        (gt / name).write_bytes(b"x")
    index, problems = index_files(gt, MASK_SUFFIXES, lambda s: match_key(s, "number"))
    assert index == {"1": gt / "map_01.png", "2": gt / "image_2.bmp"}
    assert problems == [f"{gt / 'notes.png'}: no number in the file name to match by"]
    # `defocus evaluate --gt` pairs through the same function (with its own preference: arrays first)
    cli_index, cli_problems = index_folder(gt, "", DBD_EXTS, "number")
    assert cli_index == {"1": gt / "map_01.npy", "2": gt / "image_2.bmp"} and len(cli_problems) == 1

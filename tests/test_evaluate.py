"""Evaluation protocols on hand-computed tiny examples, cross-checks against references and PySODMetrics."""

import numpy as np
import pytest

from defocus.evaluate import (PROTOCOLS, Confusion, EvaluationError, evaluate_maps, evaluate_method, f_beta,
                              get_protocol)
from defocus.evaluate import metrics as M
from defocus.evaluate.protocols import ZHAO_STEP, radius_to_sigma_nearest, resize_map, zhao_max_f
from defocus.units import RTF_SIGMA_RADIUS, sigma_to_radius


def row(*values):
    return np.array([values], dtype=np.float64)


def F(p, r):
    return 1.3 * p * r / (0.3 * p + r)


# ----------------------------------------------------------------------------------------------------------------
# metrics


def test_fbeta_and_confusion_basics():
    assert f_beta(0.5, 0.5) == pytest.approx(0.5)
    assert f_beta(1.0, 0.5) == pytest.approx(0.8125)
    assert f_beta(0.0, 0.0) == 0.0
    conf = Confusion.of(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert (conf.tp, conf.fp, conf.fn, conf.tn) == (1, 1, 1, 1)
    assert conf.iou == pytest.approx(1 / 3) and conf.accuracy == 0.5
    empty = Confusion.of(np.zeros(4, bool), np.zeros(4, bool))
    assert empty.precision == 0 and empty.recall == 0 and empty.fbeta == 0 and empty.iou == 0
    assert (conf + conf).tp == 2


def test_u8_conversions_undo_float32_polarity_flips():
    v = np.arange(256)
    flipped = (np.float32(1) - (v / 255).astype(np.float32))  # a blur PNG read in float32 and complemented
    assert np.array_equal(M.to_u8_floor(flipped), 255 - v)
    assert np.array_equal(M.to_u8_round(flipped), 255 - v)
    assert M.to_u8_floor(np.array([0.999]))[0] == 254  # plain truncation otherwise


def test_every_protocol_documents_itself_and_its_positive_class():
    for name, proto in PROTOCOLS.items():
        text = proto.definition()
        assert f"``{name}``" in text
        if proto.task == "dbd":
            assert "positive" in text.lower()
            assert proto.positive in ("blur", "focus")


# ----------------------------------------------------------------------------------------------------------------
# ddffnet


def test_ddffnet_hand_computed():
    preds = {"a": row(0.9, 0.2, 0.6, 0.5), "b": row(0, 0, 0, 0)}
    gts = {"a": row(1, 0, 0, 1), "b": row(1, 1, 0, 0)}
    res = evaluate_maps(preds, gts, "ddffnet")
    a, b = res.per_image
    # image a: in-focus map f = (.1, .8, .4, .5), GT in focus (0, 1, 1, 0)
    assert a["mae"] == pytest.approx(1.4 / 4)
    assert a["precision"] == pytest.approx(0.5) and a["recall"] == pytest.approx(0.5)
    assert a["fbeta"] == pytest.approx(0.5)
    assert a["iou"] == pytest.approx(2 / 3)  # 0.5 counts as blurred for IoU (strict > on the in-focus map)
    assert a["accuracy"] == pytest.approx(0.5)
    assert b["fbeta"] == 0 and b["mae"] == pytest.approx(0.5)
    s = res.summary
    assert s["mae"] == pytest.approx(0.425)
    assert s["fbeta"] == pytest.approx(0.25)  # mean over images
    assert s["iou"] == pytest.approx(2 / 5)  # pooled over pixels, not (2/3 + 0)/2
    assert res.failures == [] and s["n_images"] == 2


def test_ddffnet_threshold_subtlety_at_exactly_half():
    # F: in focus iff f >= 0.5 -> a 0.5 pixel is not blurred; IoU: in focus iff f > 0.5 -> it is blurred.
    res = evaluate_maps({"x": row(0.5, 1.0)}, {"x": row(1, 1)}, "ddffnet")
    r = res.per_image[0]
    assert r["recall"] == pytest.approx(0.5)
    assert r["iou"] == pytest.approx(1.0)


def _reference_test1(pred_focus_u8, gt_focus_u8):
    """D-DFFNet test1.py / test_iou1.py semantics on 8-bit in-focus maps, written out plainly."""
    maes, fs, inter, union = [], [], 0, 0
    for m8, g8 in zip(pred_focus_u8, gt_focus_u8):
        mask = m8 / 255.0
        gt = g8 / 255.0
        zeros = np.where(mask >= 0.5, 1.0, 0.0)
        gtb = np.where(gt >= 0.5, 1.0, 0.0)
        maes.append(np.mean(np.abs(gtb - mask)))
        g, z = 1 - gtb, 1 - zeros
        tp = np.sum((g == 1) & (z == 1))
        p = tp / z.sum() if z.sum() else 0.0
        r = tp / g.sum() if g.sum() else 0.0
        fs.append(0.0 if p == 0 and r == 0 else 1.3 * p * r / (0.3 * p + r))
        pi = 1 - np.where(mask > 0.5, 1, 0)
        gi = 1 - np.where(gt > 0.5, 1, 0)
        i = np.sum((pi == 1) & (gi == 1))
        inter += i
        union += pi.sum() + gi.sum() - i
    return np.mean(maes), np.mean(fs), inter / union


def test_ddffnet_matches_reference_on_random_8bit_maps():
    rng = np.random.default_rng(3)
    preds, gts = [], []
    for k in range(6):
        h, w = 20 + k, 30
        gt = np.zeros((h, w), np.uint8)
        gt[:, : w // 2 + k] = 255
        gt[:, w // 2 + k] = 128  # grey edge
        if k == 5:
            gt[:] = 255  # all in focus: no blurred pixel
        pred = rng.integers(0, 256, (h, w)).astype(np.uint8)
        pred[0, :3] = (127, 128, 255)
        preds.append(pred), gts.append(gt)
    mae, fb, iou = _reference_test1(preds, gts)
    # Feed them as in-focus maps ("focus" polarity), as D-DFFNet saves them.
    res = evaluate_maps([(str(i), p / 255.0) for i, p in enumerate(preds)],
                        [(str(i), g / 255.0) for i, g in enumerate(gts)],
                        "ddffnet", pred_polarity="focus", gt_polarity="focus")
    assert res.summary["mae"] == pytest.approx(mae, abs=1e-6)
    assert res.summary["fbeta"] == pytest.approx(fb, abs=1e-12)
    assert res.summary["iou"] == pytest.approx(iou, abs=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# dd


def test_dd_hand_computed_including_adaptive_gt():
    preds = {"1": row(1.0, 0.8, 0.2, 0.0), "2": row(0.9, 0.1, 0.1, 0.1)}  # in-focus maps
    gts = {"1": row(1, 1, 0, 0), "2": row(1, 1, 1, 0)}  # image 2: 3/4 in focus -> GT threshold capped at 255
    res = evaluate_maps(preds, gts, "dd", pred_polarity="focus", gt_polarity="focus")
    r1, r2 = res.per_image
    assert r1["threshold"] == pytest.approx(191.25 / 255)
    assert r2["threshold"] == pytest.approx(114 / 255)  # uint8(0.9*255)=229, uint8(0.1*255)=25, mean 76
    s = res.summary
    # pooled: TP 2, predicted 3, actual 2 (image 2's GT binarises to all-negative)
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(1.0)
    assert s["fbeta"] == pytest.approx(F(2 / 3, 1))
    assert s["iou"] == pytest.approx(2 / 3) and s["accuracy"] == pytest.approx(7 / 8)
    assert s["mae"] == pytest.approx((0.1 + 0.5) / 2)  # continuous GT


def test_dd_resizes_bilinearly_by_default_and_ddffnet_refuses():
    gt = np.zeros((8, 8))
    gt[:, 4:] = 1
    pred = resize_map(gt, (4, 4), "area")
    res = evaluate_maps({"x": pred}, {"x": gt}, "dd")
    assert res.n_images == 1 and not res.failures
    res = evaluate_maps({"x": pred}, {"x": gt}, "ddffnet")
    assert res.n_images == 0 and "4x4" in res.failures[0] and "8x8" in res.failures[0]
    res = evaluate_maps({"x": pred}, {"x": gt}, "ddffnet", interp="nearest")
    assert res.n_images == 1 and res.summary["fbeta"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------------------
# zhao


def test_zhao_hand_computed():
    preds = {"a": row(0.5, 0.25, 0.0, 0.0)}  # in-focus map; divided by its max -> (1, .5, 0, 0)
    gts = {"a": row(1, 0, 1, 0)}
    res = evaluate_maps(preds, gts, "zhao", pred_polarity="focus", gt_polarity="focus")
    r = res.per_image[0]
    assert r["fbeta"] == pytest.approx(0.8125)  # threshold > 0.5: P = 1, R = 0.5
    assert (r["precision"], r["recall"]) == (pytest.approx(1.0), pytest.approx(0.5))
    assert r["threshold"] == pytest.approx(128 * ZHAO_STEP)
    assert r["iou"] == pytest.approx(0.5) and r["accuracy"] == pytest.approx(0.75)
    assert r["mae"] == pytest.approx(1.75 / 4)  # raw map vs GT binarised at 125


def test_zhao_empty_gt_toolbox_quirk_and_invert_option():
    s = np.array([1.0, 0.2, 0.0, 0.0])
    gt = np.zeros(4, bool)
    f_toolbox = zhao_max_f(s, gt, "toolbox")[0]
    f_invert = zhao_max_f(s, gt, "invert")[0]
    assert f_toolbox == pytest.approx(0.8125)  # only the first threshold sees the inverted map
    assert f_invert == pytest.approx(F(1, 0.75))
    res = evaluate_maps({"a": row(*s)}, {"a": row(0, 0, 0, 0)}, "zhao", pred_polarity="focus",
                        gt_polarity="focus", empty_gt="invert")
    assert res.summary["fbeta"] == pytest.approx(F(1, 0.75))


def test_zhao_all_zero_map_leaves_the_denominator():
    preds = {"a": row(0.5, 0.25, 0.0, 0.0), "z": row(0, 0, 0, 0)}
    gts = {"a": row(1, 0, 1, 0), "z": row(1, 0, 1, 0)}
    res = evaluate_maps(preds, gts, "zhao", pred_polarity="focus", gt_polarity="focus")
    assert res.summary["zero_maps"] == 1
    assert res.summary["fbeta"] == pytest.approx(0.8125)  # (0.8125 + 0) / 1
    assert res.summary["mae"] == pytest.approx((1.75 / 4 + 0.5) / 2)


# ----------------------------------------------------------------------------------------------------------------
# pysod: cross-check with PySODMetrics


def _pysod_reference(preds_u8, gts_u8):
    psm = pytest.importorskip("py_sod_metrics")
    mae = psm.MAE()
    fm = psm.FmeasureV2(metric_handlers={
        "f": psm.FmeasureHandler(with_dynamic=True, with_adaptive=True, beta=0.3),
        "iou": psm.IOUHandler(with_dynamic=False, with_adaptive=True),
        "oa": psm.OverallAccuracyHandler(with_dynamic=False, with_adaptive=True),
        "p": psm.PrecisionHandler(with_dynamic=True, with_adaptive=False),
        "r": psm.RecallHandler(with_dynamic=True, with_adaptive=False),
    })
    for p, g in zip(preds_u8, gts_u8):
        mae.step(p, g)
        fm.step(p, g)
    return mae.get_results()["mae"], fm.get_results()


def _structured_maps(rng):
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    preds, gts = [], []
    ramp = (xx / (w - 1) * 255).astype(np.uint8)
    disk = ((yy - 20) ** 2 + (xx - 30) ** 2 < 15 ** 2)
    preds.append(ramp), gts.append(np.where(xx > 30, 255, 0).astype(np.uint8))
    preds.append(np.where(disk, 200, 40).astype(np.uint8)), gts.append(np.where(disk, 255, 0).astype(np.uint8))
    preds.append(np.full((h, w), 77, np.uint8)), gts.append(np.where(disk, 255, 0).astype(np.uint8))  # constant
    preds.append(rng.integers(0, 256, (h, w)).astype(np.uint8)), gts.append(np.zeros((h, w), np.uint8))  # empty GT
    soft = np.clip(rng.normal(128, 60, (h, w)), 0, 255).astype(np.uint8)
    preds.append(soft), gts.append(np.where(yy + xx > 50, 255, 0).astype(np.uint8))
    return preds, gts


def test_pysod_hand_computed():
    pred = row(255, 102, 0, 0) / 255  # in-focus map; min-max leaves it as is (min 0, max 1)
    gt = row(1, 0, 1, 0)
    res = evaluate_maps({"a": pred}, {"a": gt}, "pysod", pred_polarity="focus", gt_polarity="focus")
    s = res.summary
    assert s["mae"] == pytest.approx((0.4 + 1) / 4)
    # adaptive threshold 2 * mean = 0.7: only the first pixel -> P = 1, R = 0.5
    assert s["fbeta_adaptive"] == pytest.approx(0.8125)
    assert s["iou"] == pytest.approx(0.5) and s["accuracy"] == pytest.approx(0.75)
    # dynamic: t = 0 all pixels (P .5, R 1); t = 1..102 two pixels (P .5, R .5); t = 103..255 one pixel (P 1, R .5)
    assert s["fbeta"] == pytest.approx(0.8125)
    assert s["fbeta_mean"] == pytest.approx((F(0.5, 1) + 102 * 0.5 + 153 * 0.8125) / 256)


@pytest.mark.parametrize("kind", ["random", "structured"])
def test_pysod_agrees_with_py_sod_metrics(kind):
    rng = np.random.default_rng(11)
    if kind == "random":
        preds = [rng.integers(0, 256, (40, 50)).astype(np.uint8) for _ in range(5)]
        gts = [np.where(rng.random((40, 50)) > 0.6, 255, 0).astype(np.uint8) for _ in range(5)]
    else:
        preds, gts = _structured_maps(rng)
    ref_mae, ref = _pysod_reference(preds, gts)
    # PySODMetrics scores the white class of in-focus maps; ours takes blur maps in float32 and flips them.
    ours = evaluate_maps(
        [(str(i), (np.float32(1) - p.astype(np.float32) / 255)) for i, p in enumerate(preds)],
        [(str(i), (np.float32(1) - g.astype(np.float32) / 255)) for i, g in enumerate(gts)],
        "pysod",
    )
    s = ours.summary
    assert s["mae"] == pytest.approx(ref_mae, abs=1e-6)
    assert s["fbeta"] == pytest.approx(ref["f"]["dynamic"].max(), abs=1e-6)
    assert s["fbeta_max"] == pytest.approx(ref["f"]["dynamic"].max(), abs=1e-6)
    assert s["fbeta_mean"] == pytest.approx(ref["f"]["dynamic"].mean(), abs=1e-6)
    assert s["fbeta_adaptive"] == pytest.approx(ref["f"]["adaptive"], abs=1e-6)
    assert s["iou"] == pytest.approx(ref["iou"]["adaptive"], abs=1e-6)
    assert s["accuracy"] == pytest.approx(ref["oa"]["adaptive"], abs=1e-6)
    # PySODMetrics orders its 256 thresholds from 255 down to 0.
    np.testing.assert_allclose(ours.curves["fbeta"], ref["f"]["dynamic"][::-1], atol=1e-6)
    np.testing.assert_allclose(ours.curves["precision"], ref["p"]["dynamic"][::-1], atol=1e-6)
    np.testing.assert_allclose(ours.curves["recall"], ref["r"]["dynamic"][::-1], atol=1e-6)


@pytest.mark.parametrize("kind", ["random", "structured"])
def test_pysod_structure_measures_are_py_sod_metrics(kind):
    psm = pytest.importorskip("py_sod_metrics")
    rng = np.random.default_rng(5)
    if kind == "random":
        preds = [rng.integers(0, 256, (40, 50)).astype(np.uint8) for _ in range(4)]
        gts = [np.where(rng.random((40, 50)) > 0.6, 255, 0).astype(np.uint8) for _ in range(4)]
    else:
        preds, gts = _structured_maps(rng)
    sm, em, wfm = psm.Smeasure(), psm.Emeasure(), psm.WeightedFmeasure()
    for p, g in zip(preds, gts):
        for m in (sm, em, wfm):
            m.step(pred=p, gt=g)
    curve = em.get_results()["em"]["curve"]
    ours = evaluate_maps(
        [(str(i), (np.float32(1) - p.astype(np.float32) / 255)) for i, p in enumerate(preds)],
        [(str(i), (np.float32(1) - g.astype(np.float32) / 255)) for i, g in enumerate(gts)],
        "pysod",
    )
    s = ours.summary
    assert s["s_measure"] == pytest.approx(sm.get_results()["sm"], abs=1e-9)
    assert s["e_measure_adaptive"] == pytest.approx(em.get_results()["em"]["adp"], abs=1e-9)
    assert s["e_measure_mean"] == pytest.approx(curve.mean(), abs=1e-9)
    assert s["e_measure_max"] == pytest.approx(curve.max(), abs=1e-9)
    assert s["weighted_f"] == pytest.approx(wfm.get_results()["wfm"], abs=1e-9)
    assert ours.per_image[0]["s_measure"] == pytest.approx(sm.sms[0], abs=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# br2net


def _reference_br2net(preds_u8, gts_u8):
    """BR2Net misc.py semantics: MAE on /255, 256 thresholds pred > t/255, eps 1e-4, max F of the mean P/R."""
    eps = 1e-4
    ps, rs, maes = [], [], []
    for p8, g8 in zip(preds_u8, gts_u8):
        p, g = p8 / 255.0, g8 / 255.0
        maes.append(np.mean(np.abs(p - g)))
        hard = g > 0.5
        pr, rc = [], []
        for t in range(256):
            hp = p > t / 255.0
            tp = np.sum(hp & hard)
            pr.append((tp + eps) / (hp.sum() + eps))
            rc.append((tp + eps) / (hard.sum() + eps))
        ps.append(pr), rs.append(rc)
    mp, mr = np.mean(ps, axis=0), np.mean(rs, axis=0)
    return np.mean(maes), max(1.3 * a * b / (0.3 * a + b) for a, b in zip(mp, mr))


def test_br2net_hand_computed():
    pred = row(255, 128, 0, 64) / 255  # blur maps (BR2Net's own class)
    gt = row(1, 0, 1, 0)
    res = evaluate_maps({"a": pred}, {"a": gt}, "br2net")
    e = 1e-4
    assert res.summary["fbeta"] == pytest.approx(F(1.0, (1 + e) / (2 + e)))
    assert res.summary["threshold"] == pytest.approx(128 / 255)  # first t with pred > t giving only pixel 0
    assert res.summary["iou"] == pytest.approx(0.5)
    assert res.summary["mae"] == pytest.approx((128 / 255 + 1 + 64 / 255) / 4)


def test_br2net_matches_reference():
    rng = np.random.default_rng(5)
    preds = [rng.integers(0, 256, (16, 24)).astype(np.uint8) for _ in range(4)]
    gts = [np.where(rng.random((16, 24)) > 0.5, 255, 0).astype(np.uint8) for _ in range(4)]
    gts[1][:] = 0
    mae, fb = _reference_br2net(preds, gts)
    res = evaluate_maps([(str(i), p / 255) for i, p in enumerate(preds)],
                        [(str(i), g / 255) for i, g in enumerate(gts)], "br2net")
    assert res.summary["mae"] == pytest.approx(mae, abs=1e-9)
    assert res.summary["fbeta"] == pytest.approx(fb, abs=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# rtf (DME)


def test_rtf_nearest_table_lookup_ties_to_the_smaller_radius():
    r = np.array([1.0, 1.125, 1.2, 6.0, 9.0, 0.1])
    np.testing.assert_allclose(radius_to_sigma_nearest(r), [0.65, 0.65, 0.775, 3.275, 3.275, 0.3])
    assert np.allclose(radius_to_sigma_nearest(RTF_SIGMA_RADIUS[:, 1]), RTF_SIGMA_RADIUS[:, 0])


def test_rtf_hand_computed_with_drop_right():
    gt_radius = np.array([[1.0, 2.0, 9.0], [3.0, 6.0, 9.0]])
    sigma_gt = np.array([[0.65, 1.125], [1.65, 3.275]])
    err = np.array([[0.1, -0.2], [0.3, 1.0]])
    pred = np.concatenate([sigma_gt + err, np.full((2, 1), 50.0)], axis=1)  # full width: last column dropped
    res = evaluate_maps({"m": pred}, {"m": gt_radius}, "rtf", drop_right=1)
    s = res.summary
    assert s["mae_sigma"] == pytest.approx(0.4) and s["mae"] == pytest.approx(0.4)
    assert s["mse_sigma"] == pytest.approx((0.01 + 0.04 + 0.09 + 1.0) / 4)
    assert s["mae_rel"] == pytest.approx(0.6 / 4 / 3.275)  # 4.275 clips to 3.275
    rp = sigma_to_radius(sigma_gt + err)
    assert s["mae_radius"] == pytest.approx(np.mean(np.abs(rp - gt_radius[:, :2])), abs=1e-6)
    assert res.curves is None


def test_rtf_dmenet_keeps_every_column():
    gt_radius = np.array([[1.0, 2.0, 6.0], [3.0, 6.0, 1.0]])
    sigma_gt = np.array([[0.65, 1.125, 3.275], [1.65, 3.275, 0.65]])  # the RTF table's nearest rows
    pred = sigma_gt + 0.2
    dmenet = evaluate_maps({"m": pred}, {"m": gt_radius}, "rtf-dmenet").summary
    assert dmenet["mae_sigma"] == pytest.approx(0.2)
    clipped = np.clip(pred, 0, 3.275)
    assert dmenet["mae_rel"] == pytest.approx(np.mean(np.abs(clipped - sigma_gt)) / 3.275)
    assert evaluate_maps({"m": pred}, {"m": gt_radius}, "rtf", drop_right=0).summary == dmenet


def test_rtf_crops_to_common_size_and_gt_in_sigma():
    gt = np.ones((5, 30)) * 2.0
    pred = np.ones((4, 8)) * 1.5  # already cropped by the method: compared on the common top-left part
    res = evaluate_maps({"m": pred}, {"m": gt}, "rtf", gt_units="sigma")
    assert res.summary["mae_sigma"] == pytest.approx(0.5)
    res = evaluate_maps({"m": pred}, {"m": gt}, "rtf", gt_units="sigma", crop_common=False)
    assert res.n_images == 0 and "mismatch" not in res.failures[0] and "4x8" in res.failures[0]


# ----------------------------------------------------------------------------------------------------------------
# API behaviour


def test_missing_pairs_nan_and_bad_shapes_are_reported_and_skipped():
    good = np.zeros((6, 6))
    res = evaluate_maps(
        {"ok": good, "nan": np.full((6, 6), np.nan), "orphan": good, "cube": np.zeros((2, 2, 2)),
         "boom": lambda: (_ for _ in ()).throw(EvaluationError("cannot read"))},
        {"ok": good, "nan": good, "lonely": good, "cube": good, "boom": good},
        "ddffnet",
    )
    assert res.n_images == 1
    text = "\n".join(res.failures)
    assert len(res.failures) == 5
    for needle in ("nan: prediction contains NaN", "orphan: no ground truth", "lonely: no prediction",
                   "cube: prediction must be a 2-D map", "boom: cannot read"):
        assert needle in text
    assert all("\n" not in f for f in res.failures)


def test_fixed_size_and_kernels():
    gt = np.zeros((40, 60))
    gt[:, 30:] = 1
    pred = resize_map(gt, (20, 30), "nearest")
    res = evaluate_maps({"x": pred}, {"x": gt}, "ddffnet", size=20)
    assert res.n_images == 1 and res.summary["fbeta"] == pytest.approx(1.0)
    assert res.options["size"] == 20
    with pytest.raises(EvaluationError):
        get_protocol("ddffnet", interp="lanczos")
    with pytest.raises(EvaluationError):
        get_protocol("ddffnet", size="big")
    with pytest.raises(EvaluationError):
        get_protocol("nope")
    assert get_protocol("dd", interp="none").interp is None


def test_positive_class_override_changes_ddffnet_f():
    pred = row(1, 1, 1, 0)
    gt = row(1, 1, 0, 0)
    blur = evaluate_maps({"x": pred}, {"x": gt}, "ddffnet").summary
    focus = evaluate_maps({"x": pred}, {"x": gt}, "ddffnet", positive="focus").summary
    assert blur["precision"] == pytest.approx(2 / 3) and blur["recall"] == 1
    assert focus["precision"] == 1 and focus["recall"] == pytest.approx(0.5)
    assert blur["mae"] == focus["mae"]


def _peak_memory_of_scoring(n: int, protocol: str, side: int = 256) -> tuple[int, object]:
    """tracemalloc's peak while ``n`` pairs of side² float64 maps, each made only when the scorer asks, are
    scored; returns (peak bytes, result)."""
    import tracemalloc

    dme = PROTOCOLS[protocol].task == "dme"

    def pred(i):
        return lambda: np.random.default_rng(i).random((side, side)) * (5 if dme else 1)

    def gt(i):
        return lambda: (np.random.default_rng(10_000 + i).random((side, side)) > 0.5) * (4.0 if dme else 1.0) + dme

    tracemalloc.start()
    try:
        res = evaluate_maps(((str(i), pred(i)) for i in range(n)), {str(i): gt(i) for i in range(n)}, protocol)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, res


@pytest.mark.parametrize("name", ["ddffnet", "dd", "zhao", "pysod", "br2net", "rtf", "rtf-dmenet"])
def test_memory_stays_per_image(name):
    # Doubling the number of images must not raise the peak by even half a map: nothing pixel-sized outlives its
    # pair (a scorer that kept every map would add 2 × 6 maps here).
    map_bytes = 256 * 256 * 8
    _peak_memory_of_scoring(2, name)  # imports and caches out of the way
    small, res_small = _peak_memory_of_scoring(6, name)
    large, res_large = _peak_memory_of_scoring(12, name)
    assert res_small.n_images == 6 and res_large.n_images == 12 and not res_large.failures
    assert large - small < map_bytes / 2, (name, small, large)
    for r in res_large.per_image:
        assert all(np.isscalar(v) or v is None for v in r.values()), name


def test_inverted_blur_maps_are_flagged():
    rng = np.random.default_rng(0)
    gts = {str(i): (rng.random((32, 32)) > 0.5).astype(float) for i in range(3)}
    good = {k: np.clip(g + rng.normal(0, 0.1, g.shape), 0, 1) for k, g in gts.items()}
    inverted = {k: 1 - p for k, p in good.items()}
    weak = {k: np.full(g.shape, 0.5) for k, g in gts.items()}  # MAE 0.5: poor, not inverted
    assert evaluate_maps(good, gts).warnings == []
    assert evaluate_maps(weak, gts).warnings == []
    (line,) = evaluate_maps(inverted, gts).warnings
    assert "inverted" in line and "\n" not in line
    assert evaluate_maps(inverted, gts, pred_polarity="focus").warnings == []


class _Sample:
    def __init__(self, name, image, mask):
        self.name, self._image, self._mask = name, image, mask

    def image(self):
        return self._image

    def blur_mask(self):
        return self._mask


class _HalfMethod:
    name = "half"
    task = "dbd"

    def predict(self, image):
        out = np.zeros(image.shape[:2], np.float32)
        out[:, image.shape[1] // 2:] = 1
        return out


def test_evaluate_method_times_predict_and_scores(half_blurred_image):
    image, mask = half_blurred_image
    ds = [_Sample("a", image, mask), _Sample("b", image, None)]
    res = evaluate_method(_HalfMethod(), ds, "ddffnet")
    assert res.n_images == 1 and res.summary["fbeta"] == pytest.approx(1.0)
    assert res.seconds_per_image is not None and res.seconds_per_image >= 0
    assert res.per_image[0]["seconds"] >= 0
    assert res.failures == ["b: the dataset has no ground truth for this sample"]
    assert res.method == "half"
    with pytest.raises(EvaluationError):
        evaluate_method(_HalfMethod(), ds, "rtf")


def test_evaluate_method_with_registered_method(half_blurred_image):
    image, mask = half_blurred_image
    res = evaluate_method("gradient-energy", [_Sample("a", image, mask)], "ddffnet")
    assert res.n_images == 1
    assert res.summary["fbeta"] > 0.7  # the blurred half is found


def test_docs_state_every_protocol_definition():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "evaluation.md").read_text()
    for name, proto in PROTOCOLS.items():
        assert f"### `{name}`" in doc, name
        # each bullet of the docstring appears in the docs (modulo RST markup)
        first_bullet = proto.definition().split("\n* ")[1].split("\n")[0].replace("``", "`")
        assert first_bullet in doc, (name, first_bullet)


def test_resize_kernels():
    from defocus.evaluate.protocols import matlab_resize

    # MATLAB imresize([1 2 3 4], [1 2]) (bicubic, antialiased): weights worked out by hand from Keys a = -0.5
    np.testing.assert_allclose(matlab_resize(np.array([[1.0, 2, 3, 4]]), (1, 2)), [[1.4609375, 3.5390625]])
    x = np.random.default_rng(0).random((9, 13))
    np.testing.assert_allclose(matlab_resize(x, (9, 13)), x, atol=1e-12)
    np.testing.assert_allclose(matlab_resize(np.ones((9, 13)), (20, 7)), 1.0, atol=1e-12)
    torch = pytest.importorskip("torch")
    up = resize_map(x, (27, 39), "bilinear")
    ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None, None], size=(27, 39), mode="bilinear",
                                          align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(up, ref, atol=1e-6)
    near = resize_map(x, (18, 26), "nearest")
    ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None, None], size=(18, 26), mode="nearest")[0, 0]
    np.testing.assert_allclose(near, ref.numpy())

import numpy as np
import pytest

from defocus.units import RTF_SIGMA_RADIUS, convert, radius_to_sigma, sigma_to_radius


def test_table_rows_map_exactly():
    sigma, radius = RTF_SIGMA_RADIUS[:, 0], RTF_SIGMA_RADIUS[:, 1]
    np.testing.assert_allclose(radius_to_sigma(radius), sigma, atol=1e-6)
    np.testing.assert_allclose(sigma_to_radius(sigma), radius, atol=1e-6)


def test_round_trip_and_monotonic():
    r = np.linspace(0, 10, 200)
    s = radius_to_sigma(r)
    assert np.all(np.diff(s) > 0)
    np.testing.assert_allclose(sigma_to_radius(s), r, atol=1e-4)
    assert radius_to_sigma(np.array([0.0]))[0] == 0.0


def test_matches_shipped_rtf_table(shared_dir):
    scipy_io = pytest.importorskip("scipy.io")
    table = scipy_io.loadmat(shared_dir / "data/real/rtf_sample/convertion.mat")["convertion"]
    np.testing.assert_allclose(table, RTF_SIGMA_RADIUS)


def test_convert_units():
    s = np.array([[1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(convert(s, "sigma"), s)
    assert convert(s, "sigma").dtype == np.float32
    assert np.all(convert(s, "radius") > s)
    with pytest.raises(ValueError):
        convert(s, "furlongs")


def test_check_sigma_map_names_the_problem():
    from defocus.units import check_sigma_map

    ok = check_sigma_map(np.ones((4, 5, 1), np.float64), (4, 5))
    assert ok.dtype == np.float32 and ok.shape == (4, 5)
    for bad, reason in ((np.ones((4, 4)), "is 4×4 but the image is 4×5"),
                        (np.full((4, 5), np.nan), "non-finite"),
                        (-np.ones((4, 5)), "negative"),
                        (np.full((4, 5), "a"), "real numbers")):
        with pytest.raises(ValueError, match=reason):
            check_sigma_map(bad, (4, 5), "map.npy")

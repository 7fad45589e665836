import math

import matplotlib
import numpy as np
import pytest

from renderer.colour import colourise, linear_to_srgb, make_palette, srgb_to_linear


def _expected(cmap: str, value: float) -> np.ndarray:
    return np.clip(np.rint(np.asarray(matplotlib.colormaps[cmap](value))[:3] * 255), 0, 255)


def test_escape_mode_is_count_over_max_iter() -> None:
    pal = make_palette("viridis", "escape", 20, 2.0)
    counts = np.array([[0, 5, 19, 20]], dtype=np.int32)
    out = colourise(pal, counts, None)
    assert out.shape == (1, 4, 4) and out.dtype == np.uint8
    for j, n in enumerate(counts[0]):
        assert out[0, j, :3].tolist() == _expected("viridis", n / 20).tolist()
    assert (out[..., 3] == 255).all()


def test_reverse_colormap() -> None:
    pal = make_palette("viridis", "escape", 10, 2.0, reverse=True)
    out = colourise(pal, np.array([[0]], dtype=np.int32), None)
    assert out[0, 0, :3].tolist() == _expected("viridis", 1.0).tolist()


@pytest.mark.parametrize("n", [0, 3, 17, 98])
def test_smooth_mode_follows_the_continuous_escape_time(n: int) -> None:
    max_iter, radius = 100, 2.0
    pal = make_palette("gray", "smooth", max_iter, radius)
    for m2 in (4.0001, 5.0, 9.0, 15.9, 300.0):  # inside and beyond the interpolation table
        nu = n + 1 - math.log2(0.5 * math.log(m2) / math.log(radius))
        out = colourise(pal, np.array([[n]], dtype=np.int32), np.array([[m2]]))
        want = _expected("gray", min(max(nu, 0) / max_iter, 1.0))
        # The table has 4096 entries: one step of it is at most one grey level here.
        assert abs(int(out[0, 0, 0]) - int(want[0])) <= 1


def test_interior_gets_the_top_of_the_map_in_both_modes() -> None:
    for mode in ("escape", "smooth"):
        pal = make_palette("magma", mode, 50, 2.0)
        out = colourise(pal, np.array([[50]], dtype=np.int32), np.array([[0.0]]))
        assert out[0, 0, :3].tolist() == _expected("magma", 1.0).tolist()


def test_supersampling_of_a_flat_block_is_the_plain_colour() -> None:
    pal = make_palette("plasma", "escape", 30, 2.0)
    counts = np.full((6, 9), 7, dtype=np.int32)
    plain = colourise(pal, counts[:2, :3], None)
    ss = colourise(pal, counts, None, supersample=3)
    assert ss.shape == (2, 3, 4)
    assert np.array_equal(ss, plain)


def test_supersampling_averages_in_linear_light() -> None:
    pal = make_palette("gray", "escape", 1, 2.0)  # count 0 → black, 1 → white
    counts = np.array([[0, 1], [1, 0]], dtype=np.int32)
    out = colourise(pal, counts, None, supersample=2)
    want = round(float(linear_to_srgb(np.array(0.5))) * 255)  # 188, not the sRGB mean 128
    assert abs(int(out[0, 0, 0]) - want) <= 1
    assert want > 180


def test_srgb_round_trip() -> None:
    v = np.linspace(0, 1, 101)
    assert np.allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-9)


def test_shape_must_match_supersample() -> None:
    pal = make_palette("gray", "escape", 5, 2.0)
    with pytest.raises(ValueError):
        colourise(pal, np.zeros((3, 4), dtype=np.int32), None, supersample=2)

"""`renderer sheet`: the requested grid of real, labelled thumbnails spread through time."""

from __future__ import annotations

import re

import numpy as np
import pytest

from renderer.lowres import evenly_spaced, scaled
from renderer.render import render_frame_rgb
from renderer.sheet import BACKGROUND, TEXT, cell_label, contact_sheet, thumbnail_pixels


@pytest.mark.parametrize("cols, rows, thumb", [(3, 2, 20), (1, 4, 17), (5, 1, 32)])
def test_sheet_is_cols_by_rows_cells_of_real_frames(scene_factory, cols: int, rows: int,
                                                    thumb: int) -> None:
    scene = scene_factory(w=48, h=32, frames=30)
    sheet = contact_sheet(scene, cols, rows, thumb)
    lay = sheet.layout
    assert sheet.image.size == (cols * lay.cell_width, rows * lay.cell_height)
    assert lay.thumb_width == thumb and lay.thumb_height == round(thumb * 32 / 48)
    assert sheet.frames == evenly_spaced(30, cols * rows)
    small = scaled(scene, thumb, "test")
    thumbs = [thumbnail_pixels(sheet, i) for i in range(cols * rows)]
    for i, k in enumerate(sheet.frames):
        assert np.array_equal(thumbs[i], render_frame_rgb(small, k)), i
    # c moves, so the cells differ from one another
    assert len({t.tobytes() for t in thumbs}) == len(thumbs)


def test_every_cell_has_its_label(scene_factory) -> None:
    scene = scene_factory(w=48, h=32, frames=30)
    sheet = contact_sheet(scene, 3, 2, 120)
    lay = sheet.layout
    strips = []
    for i in range(6):
        x, y = lay.thumb_origin(i)
        strip = np.asarray(sheet.image.crop((x, y + lay.thumb_height, x + lay.thumb_width,
                                             y + lay.thumb_height + lay.label_height)))
        inked = (strip != BACKGROUND).any(axis=2)
        assert inked.sum() > 50, f"cell {i} has no text"
        # ... in the text colour (anti-aliased towards the background), not thumbnail pixels
        grey = strip[inked]
        assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()
        assert grey.max() >= TEXT[0] - 40
        strips.append(strip.tobytes())
    assert len(set(strips)) == 6  # each label is its own frame's


def test_cells_beyond_the_last_frame_stay_empty(scene_factory) -> None:
    scene = scene_factory(w=16, h=16, frames=4)
    sheet = contact_sheet(scene, 3, 2, 16)
    assert sheet.frames == [0, 1, 2, 3]
    for i in (4, 5):
        x, y = sheet.layout.thumb_origin(i)
        empty = np.asarray(sheet.image.crop((x, y, x + sheet.layout.cell_width - 2,
                                             y + sheet.layout.cell_height - 2)))
        assert (empty == BACKGROUND).all()


def test_label_says_time_frame_and_c(scene_factory) -> None:
    scene = scene_factory(frames=30)
    for k in (0, 7, 29):
        when, c_text = cell_label(scene, k)
        seconds, frame = re.fullmatch(r"(\S+) s  frame (\d+)", when).groups()
        assert float(seconds) == pytest.approx(k / scene.fps, abs=0.005) and int(frame) == k
        re_, sign, im = re.fullmatch(r"c = (\S+) ([+-]) (\S+)i", c_text).groups()
        c = complex(float(re_), float(im) * (1 if sign == "+" else -1))
        assert c == pytest.approx(scene.c_at_frame(k), rel=1e-5)


@pytest.mark.parametrize("frames, n", [(600, 48), (49, 48), (48, 48), (10, 48), (7, 3), (2, 2),
                                       (5, 1)])
def test_evenly_spaced_frames(frames: int, n: int) -> None:
    picks = evenly_spaced(frames, n)
    assert len(picks) == min(frames, n) and picks == sorted(set(picks))
    assert picks[0] == 0 and (n == 1 or picks[-1] == frames - 1)
    if n > 1:
        for i, k in enumerate(picks):
            assert abs(k - i * (frames - 1) / (len(picks) - 1)) <= 0.5

"""Contact sheet: thumbnails spread evenly through the animation, each labelled with time and c.

The thumbnails are real frames (the exact kernel and the scene's colouring) at thumbnail size, so
the sheet is what the video will show, only smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from renderer.colour import rgb
from renderer.errors import SceneError
from renderer.instants import fmt_c
from renderer.lowres import evenly_spaced, scaled
from renderer.render import FrameRenderer
from renderer.scene import Scene

BACKGROUND = (24, 24, 24)
TEXT = (232, 232, 232)
MAX_CELLS_PER_SIDE = 100
# A sheet is looked at, not printed: refuse sizes no viewer shows whole (and that eat memory).
MAX_SHEET_PIXELS = 100_000_000


@dataclass(frozen=True)
class SheetLayout:
    """Where things go: cols x rows cells, each a thumbnail above its label, with a margin."""

    cols: int
    rows: int
    thumb_width: int
    thumb_height: int
    label_height: int
    pad: int = 2

    @property
    def cell_width(self) -> int:
        return self.thumb_width + 2 * self.pad

    @property
    def cell_height(self) -> int:
        return self.thumb_height + self.label_height + 2 * self.pad

    @property
    def size(self) -> tuple[int, int]:
        return self.cols * self.cell_width, self.rows * self.cell_height

    def thumb_origin(self, i: int) -> tuple[int, int]:
        """Top-left pixel of cell i's thumbnail (cells run left to right, then down)."""
        row, col = divmod(i, self.cols)
        return col * self.cell_width + self.pad, row * self.cell_height + self.pad


@dataclass(frozen=True)
class Sheet:
    image: Image.Image
    layout: SheetLayout
    frames: list[int]  # frame shown in cell i; cells beyond len(frames) are empty


def cell_label(scene: Scene, k: int) -> tuple[str, str]:
    """The two label lines of frame k: when it is shown (and its number), and its c."""
    return f"{k / scene.fps:.2f} s  frame {k}", f"c = {fmt_c(scene.c_at_frame(k))}"


def label_font_size(thumb_width: int) -> int:
    # Sized so the longest label (about 26 characters) fits the thumbnail.
    return max(7, min(14, thumb_width // 14))


def label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's built-in font: nothing to install


def check_grid(cols: int, rows: int) -> None:
    for name, n in (("--cols", cols), ("--rows", rows)):
        if not 1 <= n <= MAX_CELLS_PER_SIDE:
            raise SceneError(f"{name}: must be between 1 and {MAX_CELLS_PER_SIDE}, got {n}")


@dataclass(frozen=True)
class SheetPlan:
    """Everything decided (and checked) before the first thumbnail is rendered."""

    thumb: Scene          # the scene at thumbnail size
    layout: SheetLayout
    frames: list[int]
    font_size: int


def plan_sheet(scene: Scene, cols: int, rows: int, thumb_width: int) -> SheetPlan:
    """Check the options and lay out cols x rows thumbnails thumb_width pixels across."""
    check_grid(cols, rows)
    thumb = scaled(scene, thumb_width, "--thumb-width")
    size = label_font_size(thumb.width)
    ascent, descent = label_font(size).getmetrics()
    layout = SheetLayout(cols, rows, thumb.width, thumb.height,
                         label_height=2 * (ascent + descent + 1) + 2)
    w, h = layout.size
    if w * h > MAX_SHEET_PIXELS:
        raise SceneError(f"the sheet would be {w}x{h} pixels; use fewer cells or a smaller "
                         "--thumb-width")
    return SheetPlan(thumb, layout, evenly_spaced(scene.frames, cols * rows), size)


def render_sheet(scene: Scene, plan: SheetPlan) -> Sheet:
    """Render the planned thumbnails with the real kernel and compose the labelled sheet."""
    layout = plan.layout
    font = label_font(plan.font_size)
    ascent, descent = font.getmetrics()
    line = ascent + descent + 1
    renderer = FrameRenderer(plan.thumb)
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    for i, k in enumerate(plan.frames):
        x, y = layout.thumb_origin(i)
        sheet.paste(Image.fromarray(rgb(renderer.rgba(k)), "RGB"), (x, y))
        # Drawn on its own strip, so a label too long for the cell is cut, not spilled.
        strip = Image.new("RGB", (layout.thumb_width, layout.label_height), BACKGROUND)
        draw = ImageDraw.Draw(strip)
        for j, text in enumerate(cell_label(scene, k)):
            draw.text((1, 1 + j * line), text, fill=TEXT, font=font)
        sheet.paste(strip, (x, y + layout.thumb_height))
    return Sheet(sheet, layout, plan.frames)


def contact_sheet(scene: Scene, cols: int, rows: int, thumb_width: int) -> Sheet:
    """The sheet of cols x rows thumbnails thumb_width pixels across."""
    return render_sheet(scene, plan_sheet(scene, cols, rows, thumb_width))


def thumbnail_pixels(sheet: Sheet, i: int) -> np.ndarray:
    """Cell i's thumbnail as (H, W, 3) uint8, cut back out of the sheet."""
    x, y = sheet.layout.thumb_origin(i)
    box = (x, y, x + sheet.layout.thumb_width, y + sheet.layout.thumb_height)
    return np.asarray(sheet.image.crop(box))

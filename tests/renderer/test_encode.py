import subprocess
from pathlib import Path

import numpy as np
import pytest

from renderer.encode import Encoder, concat, count_frames, find_ffmpeg
from renderer.errors import EncoderError
from renderer.scene import Encoding


def _flat(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    frame = np.empty((h, w, 4), dtype=np.uint8)
    frame[..., :3] = rgb
    frame[..., 3] = 255
    return frame


def _decode_first(path: Path, w: int, h: int) -> np.ndarray:
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)


def test_encoder_writes_every_frame_with_the_right_colours(tmp_path: Path) -> None:
    out = tmp_path / "a.mp4"
    with Encoder(out, 64, 48, 10, Encoding()) as enc:
        for _ in range(7):
            enc.write(_flat(48, 64, (200, 40, 90)))
    assert count_frames(out) == 7
    first = _decode_first(out, 64, 48).astype(int)
    # yuv420p with the BT.709 matrix, decoded the same way: within a few levels.
    assert np.abs(first - [200, 40, 90]).max() <= 4
    assert list(tmp_path.iterdir()) == [out]


def test_a_failure_inside_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "b.mp4"
    with pytest.raises(KeyboardInterrupt):
        with Encoder(out, 32, 32, 5, Encoding()) as enc:
            enc.write(_flat(32, 32, (1, 2, 3)))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with Encoder(tmp_path / "c.mp4", 32, 32, 5, Encoding()) as enc:
            enc.write(np.zeros((32, 32, 3), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_failure_is_one_encoder_error(tmp_path: Path) -> None:
    bad = Encoding(codec="libx264", crf=18, preset="medium", pix_fmt="yuv420p")
    with pytest.raises(EncoderError) as info:
        with Encoder(tmp_path / "d.mp4", 33, 31, 5, bad) as enc:  # odd size: x264 refuses
            enc.write(_flat(31, 33, (0, 0, 0)))
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_concat_joins_without_reencoding(tmp_path: Path) -> None:
    parts = []
    for i, n in enumerate((3, 5)):
        p = tmp_path / f"s{i}.mp4"
        with Encoder(p, 32, 32, 10, Encoding()) as enc:
            for _ in range(n):
                enc.write(_flat(32, 32, (10 * i, 100, 100)))
        parts.append(p)
    out = tmp_path / "joined.mp4"
    concat(parts, out)
    assert count_frames(out) == 8
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())

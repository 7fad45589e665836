"""How durations are written for people: the one format, used everywhere."""

from __future__ import annotations


def fmt_s(seconds: float, decimals: int = 1) -> str:
    """The one duration format: 90 -> '1m30s', 4000 -> '1h07m'; under a minute with
    `decimals` (progress lines keep one, tables none)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.{decimals}f}s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"

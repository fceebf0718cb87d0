"""The built-in generator: a deterministic SVG moodboard from the prompt's words and a palette.

No AI model: the picture is composed from the job alone, so the product works
end to end out of the box, and the same prompt and palette always give the
same bytes (the layout's randomness is seeded with their SHA-256). It works in
four staged steps, each reported as progress: ``layout``, ``palette``,
``compose``, ``render``.

The palette is the first of: ``params.palette``, the room's
``attributes.palette`` (a list of ``#rrggbb`` colours, or an object whose
values are), a palette derived from the prompt.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import random
import re
from typing import Any
from xml.sax.saxutils import escape

from server.generations.worker import Job, Picture, ProgressReport

WIDTH, HEIGHT = 960, 640
MAX_WORDS = 12
MAX_COLOURS = 6
STAGES = ("layout", "palette", "compose", "render")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_STOP_WORDS = frozenset({"a", "an", "and", "the", "of", "with", "in", "on", "for", "to", "at"})


def palette_of(job: Job) -> list[str]:
    """The job's colours: from its params, its room, or derived from the prompt."""
    for source in (
        job.params.get("palette"),
        (job.room or {}).get("attributes", {}).get("palette"),
    ):
        colours = _colours(source)
        if colours:
            return colours
    return _derived(job.prompt)


def _colours(source: Any) -> list[str]:
    values = list(source.values()) if isinstance(source, dict) else source
    if not isinstance(values, list):
        return []
    found = [v.lower() for v in values if isinstance(v, str) and _HEX.match(v)]
    return list(dict.fromkeys(found))[:MAX_COLOURS]


def _derived(prompt: str) -> list[str]:
    digest = hashlib.sha256(prompt.encode()).digest()
    base = digest[0] / 255
    colours = []
    for i in range(5):
        hue = (base + i * 0.13) % 1.0
        light = 0.35 + 0.1 * (digest[i + 1] % 5)
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.45)
        colours.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return colours


def words_of(prompt: str) -> list[str]:
    """The prompt's distinct words (no stop words), in order, at most MAX_WORDS."""
    words = [w.lower()[:24] for w in _WORD.findall(prompt)]
    kept = [w for w in words if w not in _STOP_WORDS] or words or ["moodboard"]
    return list(dict.fromkeys(kept))[:MAX_WORDS]


def _ink(colour: str) -> str:
    """Black or white, whichever reads better on ``colour``."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#1b1b1b" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#fdfdfd"


def compose(prompt: str, palette: list[str]) -> bytes:
    """The SVG document for a prompt and palette; pure and deterministic."""
    words = words_of(prompt)
    seed = hashlib.sha256(f"{prompt}\x00{','.join(palette)}".encode()).digest()
    rng = random.Random(int.from_bytes(seed[:8], "big"))
    columns = 4 if len(words) > 6 else 3
    rows = -(-len(words) // columns)
    margin, gap, strip = 32, 16, 96
    cell_w = (WIDTH - 2 * margin - (columns - 1) * gap) / columns
    cell_h = (HEIGHT - 2 * margin - strip - (rows - 1) * gap) / max(rows, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">',
        f"<title>{escape(prompt[:200])}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#f6f3ee"/>',
    ]
    for index, word in enumerate(words):
        colour = palette[index % len(palette)]
        x = margin + (index % columns) * (cell_w + gap)
        y = margin + (index // columns) * (cell_h + gap)
        tilt = (rng.random() - 0.5) * 6
        cx, cy = x + cell_w / 2, y + cell_h / 2
        radius = 4 + rng.random() * 14
        size = min(cell_h * 0.3, cell_w / max(len(word), 4) * 1.6)
        parts.append(
            f'<g transform="rotate({tilt:.1f} {cx:.1f} {cy:.1f})">'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{cell_w:.1f}" height="{cell_h:.1f}" '
            f'rx="{radius:.1f}" fill="{colour}"/>'
            f'<circle cx="{x + cell_w * (0.2 + rng.random() * 0.6):.1f}" '
            f'cy="{y + cell_h * (0.2 + rng.random() * 0.2):.1f}" r="{cell_h * 0.12:.1f}" '
            f'fill="{_ink(colour)}" fill-opacity="0.15"/>'
            f'<text x="{cx:.1f}" y="{cy + size / 3:.1f}" text-anchor="middle" '
            f'font-family="Georgia, serif" font-size="{size:.1f}" fill="{_ink(colour)}">'
            f"{escape(word)}</text></g>"
        )
    swatch_w = (WIDTH - 2 * margin) / len(palette)
    top = HEIGHT - margin - strip + gap
    for index, colour in enumerate(palette):
        x = margin + index * swatch_w
        parts.append(
            f'<rect x="{x:.1f}" y="{top}" width="{swatch_w:.1f}" height="{strip - gap}" '
            f'fill="{colour}"/>'
            f'<text x="{x + 10:.1f}" y="{top + strip - gap - 12}" font-family="monospace" '
            f'font-size="14" fill="{_ink(colour)}">{colour}</text>'
        )
    parts.append("</svg>")
    return "".join(parts).encode()


class BuiltinGenerator:
    """Makes the SVG moodboard in staged steps, pausing ``step_delay_s`` after each."""

    name = "builtin-svg"

    def __init__(self, step_delay_s: float = 0.25) -> None:
        self.step_delay_s = step_delay_s

    async def generate(self, job: Job, report: ProgressReport) -> Picture:
        palette: list[str] = []
        words: list[str] = []
        data = b""
        for index, stage in enumerate(STAGES):
            await report(index * 100 // len(STAGES), stage)
            if stage == "layout":
                words = words_of(job.prompt)
            elif stage == "palette":
                palette = palette_of(job)
            elif stage == "compose":
                data = compose(job.prompt, palette)
            await asyncio.sleep(self.step_delay_s)
        return Picture(
            data=data,
            content_type="image/svg+xml",
            width=WIDTH,
            height=HEIGHT,
            metadata={"generator": self.name, "palette": palette, "words": words},
        )

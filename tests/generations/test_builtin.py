"""The built-in generator: a valid, deterministic SVG from the prompt's words and the palette."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

from server.generations.builtin import HEIGHT, STAGES, WIDTH, BuiltinGenerator, compose, words_of
from server.generations.worker import Job

SVG = "{http://www.w3.org/2000/svg}"


def job(prompt: str, palette: object = None, params: dict[str, object] | None = None) -> Job:
    room = None if palette is None else {"attributes": {"palette": palette}}
    return Job(
        id=uuid.uuid4(), project_id=uuid.uuid4(), prompt=prompt, params=params or {}, room=room
    )


async def make(j: Job) -> tuple[bytes, list[tuple[int, str | None]]]:
    reports: list[tuple[int, str | None]] = []

    async def report(progress: int, stage: str | None) -> None:
        reports.append((progress, stage))

    picture = await BuiltinGenerator(step_delay_s=0).generate(j, report)
    assert picture.content_type == "image/svg+xml"
    assert (picture.width, picture.height) == (WIDTH, HEIGHT)
    return picture.data, reports


async def test_same_prompt_and_palette_give_the_same_bytes() -> None:
    """Determinism: two runs (different jobs) of one prompt and palette are byte-identical."""
    palette = ["#d8c3a5", "#8e8d8a", "#e98074"]
    first, _ = await make(job("Warm oak kitchen with brass handles", palette))
    second, _ = await make(job("Warm oak kitchen with brass handles", palette))
    assert first == second
    other_palette, _ = await make(job("Warm oak kitchen with brass handles", ["#112233"]))
    other_prompt, _ = await make(job("Cool slate bathroom", palette))
    assert len({first, other_palette, other_prompt}) == 3


async def test_output_is_a_valid_svg_of_the_words_and_colours() -> None:
    """The bytes parse as SVG of the stated size, showing the prompt's words and the palette."""
    palette = {"wall": "#D8C3A5", "accent": "#e98074", "bogus": "red"}
    data, reports = await make(job("Warm oak kitchen & <brass> handles", palette))
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    assert (root.get("width"), root.get("height")) == (str(WIDTH), str(HEIGHT))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    for word in ("warm", "oak", "kitchen", "brass", "handles"):
        assert word in texts
    fills = {e.get("fill") for e in root.iter(f"{SVG}rect")}
    assert {"#d8c3a5", "#e98074"} <= fills
    assert "red" not in fills
    assert [stage for _, stage in reports] == list(STAGES)
    assert [p for p, _ in reports] == sorted(p for p, _ in reports)


async def test_params_palette_wins_and_a_palette_is_derived_without_one() -> None:
    """``params.palette`` beats the room's; with neither, colours come from the prompt."""
    data, _ = await make(job("reading nook", ["#000000"], params={"palette": ["#123456"]}))
    assert b"#123456" in data
    assert b"#000000" not in data
    derived_a, _ = await make(job("reading nook"))
    derived_b, _ = await make(job("reading nook"))
    assert derived_a == derived_b
    ET.fromstring(derived_a)


def test_words_drop_stop_words_and_repeats() -> None:
    """The layout uses each meaningful word once, in order."""
    assert words_of("The oak and the OAK table, with a lamp") == ["oak", "table", "lamp"]
    assert words_of("a the") == ["a", "the"]
    assert words_of("!!!") == ["moodboard"]
    assert compose("x", ["#ffffff"]).startswith(b"<svg")

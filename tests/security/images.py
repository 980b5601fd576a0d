"""Crafted image files: PNGs written row by row (a header may claim any size and cost nothing to write), an ICO
and an ICNS whose directory hides a huge PNG, a DDS whose pixel format Pillow does not implement, a small digit
in every format Pillow writes here, and deterministic mutations of a file (seeded: the same bytes every run).

Used by the image tests (``tests/security/test_fuzz_images.py``, ``tests/inference/``) and by
``benchmarks/image_bounds.py``.

Example:
    >>> png(3, 2)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> len(dds_unimplemented())
    128
"""

from __future__ import annotations

import io
import random
import struct
import warnings
import zlib
from collections.abc import Callable

__all__ = ["bar", "claiming", "dds_unimplemented", "digit_image", "icns_bomb", "ico_bomb", "mutations", "png",
           "small_digits"]

#: Channels of each PNG colour type (grey, RGB, grey + alpha, RGBA).
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, bit_depth: int = 8, colour: int = 0,
        row: Callable[[int], bytes] | None = None) -> bytes:
    """A PNG of ``width x height`` (colour type ``colour``), row ``y`` given by ``row(y)`` (default: zeros),
    compressed a row at a time, so a huge one costs only its compressed size to write."""
    blank = b"\0" + bytes(width * _CHANNELS[colour] * bit_depth // 8)
    compressor = zlib.compressobj(1)
    step = 1 if row else max(1, (1 << 20) // len(blank))  # blank rows: about a megabyte at a time
    parts = [compressor.compress(b"\0" + row(y) if row else blank * min(step, height - y))
             for y in range(0, height, step)]
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def claiming(width: int, height: int, colour: int = 0) -> bytes:
    """A small valid PNG whose header claims ``width x height`` (its checksum fixed, so only the size is wrong)."""
    data = bytearray(png(16, 16, 8, colour))
    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    return bytes(data)


def bar(side: int, bit_depth: int = 16) -> bytes:
    """A grey PNG (8 or 16 bits) of a light vertical bar on black, 2/3 of ``side`` tall and 1/8 wide; its ink is
    60,000 of 65,535 in 16 bits (as a scanner writes it), 255 in 8 bits."""
    left, ink = side // 2 - side // 16, side // 8
    sample = struct.pack(">H", 60_000) if bit_depth == 16 else b"\xff"
    lit = bytes(left * len(sample)) + sample * ink + bytes((side - left - ink) * len(sample))
    dark = bytes(side * len(sample))
    return png(side, side, bit_depth, 0, lambda y: lit if side // 6 <= y < side * 5 // 6 else dark)


def ico_bomb(side: int = 13_000) -> bytes:
    """An ICO whose directory says one 16x16 image, which is a ``side x side`` RGBA PNG."""
    embedded = png(side, side, 8, 6)
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(embedded), 22)
    return directory + embedded


def icns_bomb(side: int = 13_000) -> bytes:
    """An ICNS whose one entry (``ic08``: 256x256) is a ``side x side`` RGBA PNG."""
    embedded = png(side, side, 8, 6)
    entry = b"ic08" + struct.pack(">I", 8 + len(embedded)) + embedded
    return b"icns" + struct.pack(">I", 8 + len(entry)) + entry


def dds_unimplemented(side: int = 16) -> bytes:
    """A 128-byte DDS header whose pixel format (FourCC ``XXXX``) Pillow does not implement: opening it raises
    ``NotImplementedError``."""
    header = struct.pack("<7I", 124, 0x1007, side, side, 0, 0, 0) + bytes(44)
    pixel_format = struct.pack("<2I4s5I", 32, 0x4, b"XXXX", 0, 0, 0, 0, 0)
    return b"DDS " + header + pixel_format + struct.pack("<5I", 0x1000, 0, 0, 0, 0)


def digit_image(size: tuple[int, int] = (40, 48)) -> object:
    """A Pillow image of a seven: dark ink on white paper."""
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("L", size, 255)
    stroke = [(width // 5, height // 6), (width * 4 // 5, height // 6), (width // 3, height * 5 // 6)]
    ImageDraw.Draw(image).line(stroke, fill=0, width=max(2, width // 10))
    return image


def small_digits() -> dict[str, bytes]:
    """The seven in every format Pillow can write here (``{format: bytes}``), in the first mode the format takes
    of grey, RGB, 1-bit and palette; formats that write nothing without a plugin or program of their own are left out.
    """
    from PIL import Image

    Image.init()
    seven = digit_image()
    made = {}
    for name in sorted(Image.SAVE):
        for mode in ("L", "RGB", "1", "P"):
            buffer = io.BytesIO()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # formats Pillow will drop (IM)
                    seven.convert(mode).save(buffer, name)
            except Exception:  # noqa: BLE001 - this format cannot write this mode (or anything) here
                continue
            if buffer.tell():
                made[name] = buffer.getvalue()
                break
    return made


def mutations(data: bytes, seed: int, count: int) -> list[bytes]:
    """``count`` mutants of ``data``, the same for the same seed: bytes flipped or set to 0x00/0xff, a run of
    bytes in the first 64 (the header: sizes, counts, offsets) set to a large number, cut short, or bytes
    inserted or removed in the middle."""
    rng = random.Random(seed)
    made = []
    for index in range(count):
        mutant = bytearray(data)
        kind = index % 5
        if kind == 0:  # a few random bytes changed
            for _ in range(rng.randint(1, 8)):
                mutant[rng.randrange(len(mutant))] = rng.choice([0x00, 0xFF, rng.randrange(256)])
        elif kind == 1:  # a header field made huge
            at = rng.randrange(min(64, len(mutant) - 4))
            mutant[at:at + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x01\x00", b"\x7f\xff\xff\xff",
                                            b"\x00\x01\x86\xa0", b"\xa0\x86\x01\x00"])
        elif kind == 2:  # cut short
            del mutant[rng.randrange(1, len(mutant)):]
        elif kind == 3:  # bytes inserted
            at = rng.randrange(len(mutant))
            mutant[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
        else:  # bytes removed
            at = rng.randrange(len(mutant))
            del mutant[at:at + rng.randint(1, 32)]
        made.append(bytes(mutant))
    return made

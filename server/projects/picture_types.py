"""Which picture a file holds, read from its first bytes (never from what the sender says).

The four formats a user may upload (docs/protocol.md §2: PNG, JPEG, WebP,
GIF) each open with a fixed signature; a file that does not is not a picture
of that type, whatever its ``Content-Type``. No dependency carries this (no
imaging library is installed, and the standard library's ``imghdr`` is gone
since Python 3.13), and the four signatures are short and fixed by their
specifications:

- PNG (RFC 2083, sections 3.1 and 4.1.1): the 8-byte signature, then the ``IHDR`` chunk.
- JPEG (ITU T.81, annex B.1.1.2): SOI ``FF D8`` followed by a marker (``FF``).
- GIF (the GIF89a specification, section 17): ``GIF87a`` or ``GIF89a``.
- WebP (RFC 9649, section 2.5): a RIFF container of form ``WEBP`` whose first chunk
  is ``VP8 ``, ``VP8L`` or ``VP8X``.
"""

from __future__ import annotations

UPLOAD_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
HEAD_BYTES = 16  # enough to tell every format above apart

_PNG = b"\x89PNG\r\n\x1a\n"
_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")


def sniff(data: bytes) -> str | None:
    """The content type the bytes are (one of :data:`UPLOAD_TYPES`), or None."""
    head = data[:HEAD_BYTES]
    if head.startswith(_PNG) and head[12:16] == b"IHDR":
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in _WEBP_CHUNKS:
        return "image/webp"
    return None

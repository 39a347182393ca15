"""Real sample bytes for the SDK flow: a CSV of eval prompts and a complete 1x1 PNG."""

import struct
import zlib

CSV = "prompt,expected,score\n\"Bonjour, ça va ?\",greeting,1\nhello,greeting,0.5\n".encode()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
    + _chunk(b"IDAT", zlib.compress(b"\x00\x33\x99\xff\xff"))
    + _chunk(b"IEND", b"")
)

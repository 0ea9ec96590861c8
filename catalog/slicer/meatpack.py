"""MeatPack, the character packing of binary G-code blocks (encoding 1, and 2 = with comments).

Packed data carries two 4-bit codes per byte, low nibble first, for the 15 characters of
`_CODES` ('0'-'9', '.', ' ', newline, 'G', 'X'); a nibble 0b1111 says that a full byte
follows in its place (with both nibbles 0b1111, two full bytes follow). A packed byte whose
low code is a newline ends its line: its high nibble is padding. The byte pair 0xFF 0xFF
followed by a command byte switches packing on or off and the "no spaces" mode, in which
the space code stands for 'E' and the G lines carry no spaces at all.

Decoding gives back what the writer packed: G lines without spaces get one before each
parameter letter again, blank lines are dropped, comments on G lines were never stored.
The output of one block depends only on that block (each block starts its own state).
"""

from __future__ import annotations

import re

SIGNAL = 0xFF
ENABLE_PACKING, DISABLE_PACKING, RESET_ALL, QUERY_CONFIG, ENABLE_NO_SPACES, DISABLE_NO_SPACES = (
    251, 250, 249, 248, 247, 246)
_CODES = b"0123456789. \nGX"
_NEWLINE_CODE = 0x0C
_DROP = 0x00  # stands for "no character" while decoding; G-code text never holds a NUL

_COMMAND = re.compile(rb"\xff\xff(.)", re.S)
# Parameter letters a G line gets a space before (the ones the writer may have run together).
_G_LINE = re.compile(rb"^G[^\n]*", re.M)
_PARAMETER = re.compile(rb"(?<=[^ ])([XYZEFIJRGPWHCA])")
_BLANK_LINES = re.compile(rb"\n\n+")


def _class(predicate) -> bytes:
    return b"[" + b"".join(re.escape(bytes([value])) for value in range(256) if predicate(value)) + b"]"


def _packed(value: int) -> bool:
    low, high = value & 0x0F, value >> 4
    return low != 0x0F and (high != 0x0F or low == _NEWLINE_CODE)


def _high_full(value: int) -> bool:
    low, high = value & 0x0F, value >> 4
    return high == 0x0F and low not in (0x0F, _NEWLINE_CODE)


def _low_full(value: int) -> bool:
    return value & 0x0F == 0x0F and value >> 4 != 0x0F


_TOKEN = re.compile(
    rb"(?P<run>" + _class(_packed) + rb"+)"
    rb"|(?P<low>" + _class(_low_full) + rb")(?P<low_char>.)"
    rb"|(?P<high>" + _class(_high_full) + rb")(?P<high_char>.)"
    rb"|\xff(?P<both>..)",
    re.S,
)


def _tables(no_spaces: bool) -> tuple[bytes, bytes, bytes]:
    codes = _CODES.replace(b" ", b"E") if no_spaces else _CODES
    low = bytearray(256)
    high = bytearray(256)
    for value in range(256):
        low[value] = codes[value & 0x0F] if value & 0x0F != 0x0F else _DROP
        if value & 0x0F == _NEWLINE_CODE or value >> 4 == 0x0F:
            high[value] = _DROP
        else:
            high[value] = codes[value >> 4]
    return bytes(low), bytes(high), codes


_TABLES = {False: _tables(False), True: _tables(True)}


def _unpack(data: bytes, no_spaces: bool, out: bytearray) -> bytes:
    """Append the characters of a packed stretch to `out`; return what is left unread (a cut token)."""
    low_table, high_table, codes = _TABLES[no_spaces]
    position = 0
    for token in _TOKEN.finditer(data):
        if token.start() != position:
            break
        position = token.end()
        run = token.group("run")
        if run is not None:
            pairs = bytearray(2 * len(run))
            pairs[0::2] = run.translate(low_table)
            pairs[1::2] = run.translate(high_table)
            out += pairs.replace(b"\x00", b"")
        elif token.group("low") is not None:
            out += token.group("low_char")
            out.append(codes[token.group("low")[0] >> 4])
        elif token.group("high") is not None:
            out.append(codes[token.group("high")[0] & 0x0F])
            out += token.group("high_char")
        else:
            out += token.group("both")
    return data[position:]


def decode_block(data: bytes) -> bytes:
    """The G-code text of one MeatPack-encoded block."""
    out = bytearray()
    packing = False
    no_spaces = False
    ever_no_spaces = False
    position = 0
    for command in _COMMAND.finditer(data):
        _segment(data[position:command.start()], packing, no_spaces, out)
        position = command.end()
        code = command.group(1)[0]
        if code == ENABLE_PACKING:
            packing = True
        elif code in (DISABLE_PACKING, RESET_ALL):
            packing = False
        elif code == ENABLE_NO_SPACES:
            no_spaces = ever_no_spaces = True
        elif code == DISABLE_NO_SPACES:
            no_spaces = False
    _segment(data[position:], packing, no_spaces, out)
    text = _BLANK_LINES.sub(b"\n", bytes(out))
    if ever_no_spaces:
        text = _G_LINE.sub(_spaced, text)
    return text


def _segment(data: bytes, packing: bool, no_spaces: bool, out: bytearray) -> None:
    if not data:
        return
    if not packing:
        out += data
        return
    rest = _unpack(data, no_spaces, out)
    if rest:
        # A token cut by the end of the block (a damaged block): keep what its packed half says.
        first = rest[0]
        if first & 0x0F != 0x0F:
            out.append(_TABLES[no_spaces][2][first & 0x0F])


def _spaced(line: re.Match) -> bytes:
    text = line.group(0)
    return b"G" + _PARAMETER.sub(rb" \1", text[1:])

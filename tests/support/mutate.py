"""Mutations of valid messages: the shapes a fuzzer finds bugs with (cut, flipped, inserted, repeated)."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few random edits: truncation, byte flips, insertions, duplicated slices."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "repeat", "delete"]))
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(data) - 1))
        if kind == "cut":
            del data[at:]
        elif kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "repeat":
            end = draw(st.integers(at, min(len(data), at + 64)))
            data[at:at] = data[at:end] * draw(st.integers(1, 3))
        else:
            end = draw(st.integers(at, min(len(data), at + 16)))
            del data[at:end]
    return bytes(data)

#!/usr/bin/env python3
"""Writes fixtures/hostile/pth/ and fixtures/hostile/config/: hand-made model files that ask for unbounded time or memory, each of which
the readers must refuse with a clear error (tests/hostile_files.rs) and which seed the fuzz targets.

usage: python3 tools/make_hostile_fixtures.py  (from the repository root; needs only Python)

The pickles are written opcode by opcode, as torch.save's legacy format and zip format lay them out,
so no PyTorch is needed and every byte is deliberate.
"""
import io
import json
import os
import struct
import zipfile

OUT = "fixtures/hostile"
MAGIC = 0x1950A86A20F9469CFC6C


def text(s):
    """BINUNICODE."""
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def long1(n):
    """LONG1: a little-endian two's-complement integer of as many bytes as it needs."""
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def tuple_of(items):
    return b"(" + b"".join(items) + b"t"


def tensor(key, offset, size, stride):
    """_rebuild_tensor_v2(storage `key` of floats, offset, size, stride, False, OrderedDict())."""
    storage = tuple_of([text("storage"), b"ctorch\nFloatStorage\n", text(key), text("cpu"), long1(1)])
    return (b"ctorch._utils\n_rebuild_tensor_v2\n"
            + tuple_of([storage + b"Q", long1(offset), tuple_of(map(long1, size)),
                        tuple_of(map(long1, stride)), b"\x89",
                        b"ccollections\nOrderedDict\n)R"])
            + b"R")


def state_dict(entries):
    """An OrderedDict of name -> tensor pickle."""
    body = b"".join(text(name) + value + b"s" for name, value in entries)
    return b"\x80\x02ccollections\nOrderedDict\n)R" + body + b"."


def legacy(entries, storages):
    """The legacy format: magic, protocol, system info, the state dict, the storage keys, then each
    storage as its element count and its float32 bytes."""
    out = b"\x80\x02" + long1(MAGIC) + b"."
    out += b"\x80\x02M\xe9\x03."
    out += b"\x80\x02}."
    out += state_dict(entries)
    out += b"\x80\x02](" + b"".join(text(k) for k in storages) + b"e."
    for values in storages.values():
        out += struct.pack("<q", len(values)) + struct.pack(f"<{len(values)}f", *values)
    return out


def memo_doubling():
    """A memoised tuple doubled 60 times: 2^60 values if the memo copies deeply, before any check of
    what the file is."""
    body = b")q\x00" + b"h\x00h\x00\x86q\x00" * 60
    return b"\x80\x02" + body + b"."


def zip_bomb():
    """A zip checkpoint whose data.pkl (deflated, 20 KB) unpacks to 20 MB of NONE opcodes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + b"N" * 20_000_000 + b".")
    return buffer.getvalue()


def write(name, data):
    kind = "config" if name.endswith(".json") else "pth"
    os.makedirs(os.path.join(OUT, kind), exist_ok=True)
    with open(os.path.join(OUT, kind, name), "wb") as f:
        f.write(data)


def main():
    write("memo_doubling.pth", memo_doubling())
    # 2^40 elements that all read the one float of their storage.
    write("zero_stride.pth", legacy([("w", tensor("0", 0, [1 << 40], [0]))], {"0": [1.0]}))
    # A size whose element count overflows 64 bits.
    write("overflowing_size.pth",
          legacy([("w", tensor("0", 0, [1 << 40, 1 << 40], [1, 1]))], {"0": [1.0]}))
    # An offset that wraps the view's end around to inside the storage.
    write("wrapping_offset.pth",
          legacy([("w", tensor("0", (1 << 64) - 2, [4], [1]))], {"0": [1.0, 2.0, 3.0, 4.0]}))
    # 200 names for one 1,000-float storage: 200,000 elements from a 32 KB file.
    write("repeated_views.pth",
          legacy([(f"w{i}", tensor("0", 0, [1000], [1])) for i in range(200)], {"0": [0.5] * 1000}))
    write("zip_bomb.pth", zip_bomb())
    with open("models/default/config.json") as f:
        config = json.load(f)
    write("huge_config.json", json.dumps(dict(config, hidden=1 << 40), indent=2).encode())
    write("long_config.json", json.dumps(dict(config, max_length=1 << 40), indent=2).encode())


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Shrinks a GGUF to a skeleton that travels, and grows it back to a file of the same shapes.

A GPU machine reached only through a device call takes 64 MiB with it and can fetch nothing, so a
model of 100 MB or 1 GB cannot go there. Its speed does not depend on the weights' values, only on
their types and shapes, so the skeleton keeps the file's whole header (metadata, tokenizer, chat
template, tensor table) and the first rows of each tensor; `expand` writes every tensor back at
full size by repeating those rows. The grown file loads and runs like the original and reads the
same bytes per token, so it benchmarks the same; its generated text is meaningless.

usage:
  scripts/gguf-skeleton.py shrink MODEL.gguf SKELETON [--rows N]   (default 16 rows per tensor)
  scripts/gguf-skeleton.py expand SKELETON MODEL.gguf

Standard library only: the GPU machine has Python but not the gguf package.
"""

import os
import struct
import sys

SKELETON_MAGIC = b"HSKL0001"

# ggml type id: (elements per block, bytes per block), for the types GGUF files here hold.
BLOCKS = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    30: (1, 2),  # BF16
}

# Metadata value types with a fixed size, by id: struct format.
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


class Truncated(ValueError):
    """The bytes end inside the header: read more of the file."""


class Reader:
    """Reads little-endian GGUF fields from a byte string."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        try:
            (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error:
            raise Truncated("the header runs past the bytes read") from None
        self.pos += struct.calcsize(fmt)
        return value

    def skip(self, n):
        """Moves past `n` bytes, which must have been read."""
        if self.pos + n > len(self.data):
            raise Truncated("a field runs past the bytes read")
        self.pos += n

    def string(self):
        n = self.take("Q")
        start = self.pos
        self.skip(n)
        return self.data[start : self.pos].decode("utf-8", "replace")

    def value(self, kind):
        """A scalar value; strings and arrays (the vocabulary among them) are only skipped, as
        nothing here reads them, and give None."""
        if kind in SCALARS:
            return self.take(SCALARS[kind])
        if kind == STRING:
            self.skip(self.take("Q"))
        elif kind == ARRAY:
            item, n = self.take("I"), self.take("Q")
            if item in SCALARS:
                self.skip(struct.calcsize(SCALARS[item]) * n)
            else:
                for _ in range(n):
                    self.value(item)
        else:
            raise ValueError(f"unknown metadata value type {kind}")
        return None


def parse_header(data):
    """The tensors (name, type, element count, row length, offset) and where their data starts."""
    r = Reader(data)
    if r.take("4s") != b"GGUF":
        raise ValueError("not a GGUF file (no GGUF magic)")
    version = r.take("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported")
    n_tensors, n_kv = r.take("Q"), r.take("Q")
    alignment = 32
    for _ in range(n_kv):
        key, kind = r.string(), r.take("I")
        value = r.value(kind)
        if key == "general.alignment":
            alignment = value
    tensors = []
    for _ in range(n_tensors):
        name, n_dims = r.string(), r.take("I")
        dims = [r.take("Q") for _ in range(n_dims)]
        kind, offset = r.take("I"), r.take("Q")
        if kind not in BLOCKS:
            raise ValueError(f"tensor {name}: ggml type {kind} is not supported here")
        count = 1
        for d in dims:
            count *= d
        tensors.append((name, kind, count, dims[0] if dims else 1, offset))
    data_start = -(-r.pos // alignment) * alignment
    return tensors, data_start


def nbytes(kind, count):
    per_block, block_bytes = BLOCKS[kind]
    if count % per_block:
        raise ValueError(f"{count} elements are not whole blocks of {per_block}")
    return count // per_block * block_bytes


def read_header(f):
    """The header bytes of an open GGUF, read until they parse."""
    size = 1 << 20
    while True:
        f.seek(0)
        data = f.read(size)
        try:
            tensors, start = parse_header(data)
        except Truncated:
            if len(data) < size or size >= 1 << 30:
                raise ValueError("the file ends inside its GGUF header") from None
            size *= 4
            continue
        if start > len(data):
            raise ValueError("the file ends inside its GGUF header")
        return data[:start], tensors, start


def shrink(src, dst, rows):
    with open(src, "rb") as f:
        header, tensors, start = read_header(f)
        with open(dst, "wb") as out:
            out.write(SKELETON_MAGIC + struct.pack("<Q", len(header)) + header)
            for name, kind, count, row, offset in tensors:
                keep = min(nbytes(kind, count), rows * nbytes(kind, row))
                f.seek(start + offset)
                sample = f.read(keep)
                if len(sample) != keep:
                    raise ValueError(f"tensor {name} runs past the end of {src}")
                out.write(struct.pack("<Q", keep) + sample)
    print(f"{len(tensors)} tensors, header {len(header)} bytes")


def read_exact(f, n, what):
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"the skeleton ends inside {what}")
    return data


def expand(src, dst):
    with open(src, "rb") as f:
        if f.read(len(SKELETON_MAGIC)) != SKELETON_MAGIC:
            raise ValueError(f"{src} is not a skeleton made by this script")
        length = struct.unpack("<Q", read_exact(f, 8, "its header"))[0]
        header = read_exact(f, length, "its header")
        tensors, start = parse_header(header)
        samples = []
        for name, *_ in tensors:
            n = struct.unpack("<Q", read_exact(f, 8, f"tensor {name}"))[0]
            samples.append(read_exact(f, n, f"tensor {name}"))
    written = 0
    with open(dst, "wb") as out:
        out.write(header)
        for (name, kind, count, _, offset), sample in sorted(zip(tensors, samples), key=lambda t: t[0][4]):
            size = nbytes(kind, count)
            if not sample and size:
                raise ValueError(f"tensor {name} has an empty sample")
            if start + offset < out.tell():
                raise ValueError(f"tensor {name} overlaps the one before it")
            # The sample is whole rows, so the cut after the last whole repeat falls on a row.
            out.write(b"\0" * (start + offset - out.tell()))
            repeats, rest = divmod(size, max(len(sample), 1))
            for _ in range(repeats):
                out.write(sample)
            out.write(sample[:rest])
            written += size
    print(f"{len(tensors)} tensors, {written} bytes of weights")


def written_whole(write, dst):
    """Runs `write(path)` on a file beside `dst` and renames it to `dst` only when it succeeds,
    so a failure leaves no half-written file under the name asked for."""
    part = dst + ".part"
    try:
        write(part)
        os.replace(part, dst)
    finally:
        if os.path.exists(part):
            os.remove(part)


def main(argv):
    if len(argv) >= 4 and argv[1] == "shrink":
        rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else 16
        if rows < 1:
            raise ValueError("--rows must be at least 1")
        written_whole(lambda part: shrink(argv[2], part, rows), argv[3])
    elif len(argv) == 4 and argv[1] == "expand":
        written_whole(lambda part: expand(argv[2], part), argv[3])
    else:
        print(__doc__.strip().split("\n\n")[-2], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:
        print(f"gguf-skeleton: {e}", file=sys.stderr)
        sys.exit(1)

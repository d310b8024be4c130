"""Time to check and strip a resident's photo, beside decoding the same file with Pillow.

    python benchmarks/photos.py [--megapixels 12 4] [--repeat 5]

Each photo is a JPEG of the given size written by Pillow (random pixels: the slowest
content to encode, a real photo is faster) with EXIF; ``prepare_photo`` makes the
stripped 1,600 px copy and the 400 px thumbnail. The reference is one full decode of
the same bytes (``Image.open(...).load()``), measured in the same run.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from geo311.photos import prepare_photo


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[12.0, 4.0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    print("megapixels  bytes        prepare_photo  full decode  ratio")
    for mp in args.megapixels:
        w = int((mp * 1e6 * 4 / 3) ** 0.5)
        h = int(w * 3 / 4)
        out = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")).save(
            out, "JPEG", quality=90, exif=exif.tobytes())
        data = out.getvalue()
        prepared = _best(lambda d=data: prepare_photo(d), args.repeat)
        decoded = _best(lambda d=data: Image.open(io.BytesIO(d)).load(), args.repeat)
        print(f"{mp:10.1f}  {len(data):11,}  {prepared:11.3f} s  {decoded:9.3f} s  "
              f"{prepared / decoded:5.1f}x")


if __name__ == "__main__":
    main()

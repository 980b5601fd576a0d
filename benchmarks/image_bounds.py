"""What one image costs at most: the time and peak memory of reading the worst images the limits allow.

Each case is read by ``load_grayscale`` (what ``predict``, image folders and the digit pad use) in a fresh
process, after a warm-up on a small PNG; the process reports the seconds the read took and how far it raised
its peak resident memory (``VmHWM`` in ``/proc/self/status``; Linux) above the warm process's. Every case is
repeated and interleaved with the others; the medians are printed. ``--code PATH`` measures another checkout
(e.g. the code before the limits) with the same images.

    python benchmarks/image_bounds.py [--repeats 3] [--code PATH]

The images are written once into a temporary folder (``tests/security/images.py`` crafts them): the largest
the limits allow (10,000 x 5,000 = 50 million pixels) in the formats and modes that cost most (4 bytes a pixel:
RGBA, 32-bit float; a 7,000 x 7,000 16-bit scan; progressive JPEG), the longest strip allowed (10,000 x 500),
and the crafted files the limits refuse (a 1 x 50,000,000 PNG, an ICO whose 16x16 entry holds a
13,000 x 13,000 RGBA PNG).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.security.images import bar, ico_bomb, png  # noqa: E402  (the fuzz tests' crafted files)

MEASURE = """
import json, sys, time
from ignite_mnist.data.preprocess import ImageError, load_grayscale

def peak_kib():  # VmHWM: this process's own peak (ru_maxrss also counts the parent's, inherited across exec)
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])

load_grayscale(sys.argv[2])  # warm-up: imports, Pillow's plugins
before = peak_kib()
started = time.perf_counter()
try:
    load_grayscale(sys.argv[1])
    outcome = "read"
except ImageError as error:
    outcome = "refused: " + str(error).split(": ", 1)[1][:60]
seconds = time.perf_counter() - started
after = peak_kib()
print(json.dumps({"seconds": seconds, "added_mib": (after - before) / 1024, "peak_mib": after / 1024,
                  "outcome": outcome}))
"""


def write_cases(folder: Path) -> dict[str, Path]:
    from PIL import Image

    cases: dict[str, bytes | Image.Image] = {}
    cases["plain 280x280 PNG"] = bar(280, 8)
    cases["50 MP RGBA PNG"] = png(10_000, 5_000, 8, 6)
    cases["49 MP 16-bit grey PNG"] = bar(7_000)
    cases["50 MP 16-bit RGBA PNG"] = png(10_000, 5_000, 16, 6)
    cases["10000x500 strip PNG"] = png(10_000, 500)
    cases["1x50,000,000 PNG"] = png(1, 50_000_000)
    cases["ICO: 16x16 entry, 13000x13000 PNG"] = ico_bomb()
    paths = {}
    for name, data in cases.items():
        paths[name] = folder / (name.replace(" ", "_").replace(",", "").replace(":", "") + ".png")
        paths[name].write_bytes(data)
    rgb = Image.new("RGB", (10_000, 5_000), (200, 30, 90))
    for name, suffix, options in (("50 MP progressive JPEG", ".jpg", {"progressive": True, "subsampling": 0}),
                                  ("50 MP GIF", ".gif", {}),
                                  ("50 MP float TIFF", ".tif", {"compression": "tiff_adobe_deflate"})):
        path = folder / (name.replace(" ", "_") + suffix)
        image = rgb.convert("F") if "float" in name else rgb
        image.save(path, **options)
        paths[name] = path
    del rgb
    return paths


def measure(path: Path, warm: Path, code: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(warm)], capture_output=True, text=True,
                          env=env, cwd=code, timeout=600, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose ignite_mnist is measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_cases(Path(folder))
        results: dict[str, list[dict]] = {name: [] for name in paths}
        for _ in range(args.repeats):
            for name, path in paths.items():  # interleaved: the machine's load hits every case alike
                results[name].append(measure(path, paths["plain 280x280 PNG"], args.code))
        print(f"{'case':38} {'file KiB':>9} {'seconds':>8} {'+MiB':>7} {'peak MiB':>9}  outcome")
        for name, runs in results.items():
            size = paths[name].stat().st_size / 1024
            print(f"{name:38} {size:9.0f} {statistics.median(r['seconds'] for r in runs):8.3f} "
                  f"{statistics.median(r['added_mib'] for r in runs):7.0f} "
                  f"{statistics.median(r['peak_mib'] for r in runs):9.0f}  {runs[0]['outcome']}")


if __name__ == "__main__":
    sys.stdout = io.TextIOWrapper(sys.stdout.buffer, line_buffering=True)
    main()

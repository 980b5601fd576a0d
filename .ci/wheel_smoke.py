"""Use an installed ignite-mnist wheel the way a user would: run by .ci/wheel_check.sh with the Python of a
fresh virtualenv that holds the wheel and its dependencies only, from a folder outside the source tree.

    python wheel_smoke.py WHEEL DATA_DIR

Checks, failing with a one-line reason: the wheel holds the package data (the digit pad's page, py.typed)
and the LICENSE; the package imported is the installed one (no source tree on the path); ``--version``, the
installed metadata, ``ignite_mnist.__version__`` and the wheel's file name agree; one epoch of training on
DATA_DIR (an MNIST-layout folder), ``predict`` on the run, and the digit pad serving its page and a
prediction. Standard library only, besides the package under test and Pillow (torchvision's dependency).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

#: Files the wheel must hold besides the modules (a glob over its member names).
REQUIRED_FILES = ("ignite_mnist/py.typed", "ignite_mnist/inference/demo.html", "*.dist-info/licenses/LICENSE")
TIMEOUT = 300  # seconds for any one command; a hang fails the check instead of stalling CI


def fail(message: str) -> None:
    sys.exit(f"wheel check: {message}")


def check_contents(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for pattern in REQUIRED_FILES:
            if not any(Path(name).match(pattern) for name in names):
                fail(f"{wheel.name} lacks {pattern}")
        licence = next(name for name in names if Path(name).match("*.dist-info/licenses/LICENSE"))
        if "BSD 3-Clause License" not in archive.read(licence).decode():
            fail(f"{wheel.name}: {licence} is not the BSD 3-Clause licence")
    print(f"wheel check: {wheel.name} holds {', '.join(REQUIRED_FILES)}")


def check_installed(wheel: Path) -> Path:
    """The installed package is this virtualenv's, not a source tree; returns its console script."""
    import ignite_mnist

    package = Path(ignite_mnist.__file__).resolve()
    if Path(sys.prefix).resolve() not in package.parents:
        fail(f"ignite_mnist was imported from {package}, not from the virtualenv {sys.prefix}")
    installed = metadata.version("ignite-mnist")
    if metadata.metadata("ignite-mnist")["License-Expression"] != "BSD-3-Clause":
        fail("the installed metadata's License-Expression is not BSD-3-Clause")
    if wheel.name.split("-")[1] != installed or ignite_mnist.__version__ != installed:
        fail(f"versions differ: wheel {wheel.name}, metadata {installed}, __version__ {ignite_mnist.__version__}")
    script = shutil.which("ignite-mnist", path=str(Path(sys.executable).parent))
    if script is None:
        fail(f"no ignite-mnist console script in {Path(sys.executable).parent}")
    version = cli(script, "--version").stdout.strip()
    if version != f"ignite-mnist {installed}":
        fail(f"ignite-mnist --version says {version!r}, the metadata {installed}")
    print(f"wheel check: {version} from {package.parent}")
    return Path(script)


def cli(script: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        fail(f"ignite-mnist {' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def digit_png(folder: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("L", (120, 160), color=255)
    ImageDraw.Draw(image).line([(30, 20), (90, 20), (50, 140)], fill=0, width=12)  # a seven, dark on white
    path = folder / "seven.png"
    image.save(path)
    return path


def check_pad(script: Path, run: Path, image: Path) -> None:
    """``demo`` on a free port: the page is served (the package's demo.html) and a drawing is classified."""
    process = subprocess.Popen([str(script), "demo", str(run), "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stuck = threading.Timer(TIMEOUT, process.kill)
    stuck.start()
    try:
        line = process.stdout.readline() if process.stdout else ""  # "digit pad for ... at http://...:PORT/ ..."
        if " at http://" not in line:
            fail(f"ignite-mnist demo did not say its address: {line!r}")
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url, timeout=60) as response:
            page = response.read().decode()
        if "<title>ignite-mnist digit pad</title>" not in page or "<canvas" not in page:
            fail(f"{url} did not serve the digit pad's page")
        request = urllib.request.Request(url + "predict", data=image.read_bytes(), method="POST",
                                         headers={"Content-Type": "image/png"})  # what the page sends
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        if answer.get("classes") != [str(d) for d in range(10)] or len(answer.get("probabilities", [])) != 10:
            fail(f"the pad's answer to a drawing: {answer}")
        print(f"wheel check: the digit pad served its page and classified a drawing at {url}")
    finally:
        stuck.cancel()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def main(wheel: Path, data_dir: Path) -> None:
    check_contents(wheel)
    script = check_installed(wheel)
    here = Path.cwd()
    cli(script, "--data-dir", str(data_dir), "--epochs", "1", "--val-size", "200", "--output-dir", str(here),
        "--run-name", "smoke", "--tracker", "none", "--progress", "none", "--no-plots", "--threads", "1")
    summary = json.loads((here / "smoke" / "summary.json").read_text())
    print(f"wheel check: one epoch trained, test accuracy {summary['test_accuracy']:.3f}")
    (prediction,) = json.loads(cli(script, "predict", str(here / "smoke"), str(digit_png(here)), "--json").stdout)
    if prediction.get("label") not in [str(d) for d in range(10)]:
        fail(f"predict answered {prediction}")
    print(f"wheel check: predict classified a drawing as {prediction['label']}")
    check_pad(script, here / "smoke", here / "seven.png")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python wheel_smoke.py WHEEL DATA_DIR")
    os.environ.setdefault("WANDB_MODE", "disabled")
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())

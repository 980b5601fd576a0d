"""``ignite-mnist demo``: the digit pad served on 127.0.0.1, and real test digits drawn on it in headless Chromium.

The browser test draws each digit as strokes: every run of bright pixels in a row of the
28x28 test image becomes one press-drag-release of the mouse across the canvas (ten canvas
pixels to one MNIST pixel), so the page sees pointer events as from a person drawing.
It needs Debian's chromium (``/usr/bin/chromium``, or ``$CHROMIUM``) and the ``playwright``
package, which drives it over the DevTools protocol (no browser of Playwright's own).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from ignite_mnist.cli import main
from ignite_mnist.data import load_split_tensors
from ignite_mnist.inference.demo import HOST
from ignite_mnist.inference.export import export_model
from ignite_mnist.inference.trained import load_model, predict
from ignite_mnist.limits import MAX_DRAWING_BYTES

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
DIGITS = 8  # the first test digits drawn
SCALE = 10  # canvas pixels per MNIST pixel (the canvas is 280x280)
#: A folder where the browser tests also save their screenshots when set (the docs' pictures: docs/img).
SCREENSHOT_ENV = "IGNITE_MNIST_DEMO_SCREENSHOT"


class Pad:
    """``ignite-mnist demo`` running in a subprocess on a free port."""

    def __init__(self, source: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ignite_mnist", "demo", str(source), "--port", "0", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        stuck = threading.Timer(120, self.process.kill)  # a pad that never says where it is fails the test
        stuck.start()
        line = self.process.stdout.readline()  # "digit pad for ... at http://127.0.0.1:PORT/ (Ctrl-C stops it)"
        stuck.cancel()
        assert " at http://" in line, line + self.process.stderr.read()
        self.first_line = line
        self.url = line.split(" at ")[1].split()[0]

    def post(self, body: bytes, path: str = "predict", headers: dict[str, str] | None = None) -> tuple[int, dict]:
        """The status and JSON answer of a POST with ``headers`` (default: the page's ``Content-Type: image/png``)."""
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": "image/png"} if headers is None else headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def announce(self, length: int) -> tuple[int, dict]:
        """The answer to a POST whose headers say ``length`` bytes follow, before any is sent."""
        host, port = self.url.split("//")[1].strip("/").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.putrequest("POST", "/predict")
            connection.putheader("Content-Type", "image/png")
            connection.putheader("Content-Length", str(length))
            connection.endheaders()
            response = connection.getresponse()
            return response.status, json.load(response)
        finally:
            connection.close()

    def stop(self, signum: int) -> tuple[int, str, str]:
        """Send ``signum``: the exit code and what it printed after its first line on stdout, and on stderr."""
        self.process.send_signal(signum)
        stdout, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stdout, stderr

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(scope="module")
def pad(idx_run: Path) -> Iterator[Pad]:
    """The pad serving the MLP trained on the generated dataset (shared: the tests only ask it things)."""
    served = Pad(idx_run)
    yield served
    served.close()


def test_the_page_is_served_on_localhost_with_a_pointer_canvas(pad: Pad) -> None:
    assert pad.url.startswith(f"http://{HOST}:")
    with urllib.request.urlopen(pad.url, timeout=30) as response:
        page = response.read().decode()
    assert "<canvas" in page and "touch-action: none" in page and "pointermove" in page
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(pad.url + "secret.txt", timeout=30)
    assert missing.value.code == 404


def test_a_drawing_gets_every_class_probability_as_predict_computes_them(pad: Pad, idx_run: Path,
                                                                        tmp_path: Path) -> None:
    from PIL import Image, ImageDraw

    drawing = Image.new("L", (280, 280), color=255)
    ImageDraw.Draw(drawing).line([(60, 120), (220, 120)], fill=0, width=18)
    drawing.save(tmp_path / "drawing.png")
    status, answer = pad.post((tmp_path / "drawing.png").read_bytes())
    assert status == 200 and answer["classes"] == [str(d) for d in range(10)]
    assert sum(answer["probabilities"]) == pytest.approx(1, abs=1e-4)
    (expected,) = predict(load_model(idx_run), [tmp_path / "drawing.png"])
    assert answer["probabilities"].index(max(answer["probabilities"])) == expected.index
    assert max(answer["probabilities"]) == pytest.approx(expected.probability, abs=1e-5)


def test_blank_broken_and_oversized_drawings_are_answered_with_a_reason(pad: Pad, tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (280, 280), color=255).save(tmp_path / "blank.png")
    assert pad.post((tmp_path / "blank.png").read_bytes()) == (
        200, {"classes": [str(d) for d in range(10)], "error": "the drawing: no digit found (the image is blank)"})
    status, answer = pad.post(b"GIF89a not really")
    assert status == 200
    assert answer["error"] == "the drawing: not a PNG, JPEG, BMP, GIF, TIFF or PNM (PBM, PGM, PPM) image"
    status, answer = pad.announce(MAX_DRAWING_BYTES + 1)
    assert status == 413
    assert answer["error"] == f"a drawing is 1 to {MAX_DRAWING_BYTES} bytes, got {MAX_DRAWING_BYTES + 1}"
    assert pad.post(b"x", path="elsewhere")[0] == 404


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_it_normally(signum: signal.Signals, idx_run: Path) -> None:
    served = Pad(idx_run)
    try:
        code, stdout, stderr = served.stop(signum)
    finally:
        served.close()
    assert (code, stdout, stderr) == (0, f"digit pad stopped ({signum.name})\n", "")


def test_the_0_1_upload_limit_answers_with_a_deprecation_warning() -> None:
    from ignite_mnist.inference import demo

    moved = r"demo\.MAX_UPLOAD_BYTES moved to ignite_mnist\.limits\.MAX_DRAWING_BYTES"
    with pytest.warns(DeprecationWarning, match=moved):
        assert demo.MAX_UPLOAD_BYTES == MAX_DRAWING_BYTES
    with pytest.raises(AttributeError):
        demo.NO_SUCH_NAME  # noqa: B018


def test_a_foreign_host_is_refused(pad: Pad, tmp_path: Path) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 reaches the pad with its own
    name in ``Host``; it gets neither the page nor an answer."""
    port = pad.url.rsplit(":", 1)[1].strip("/")
    for host in ("evil.example", f"evil.example:{port}"):
        for method, path, body in (("GET", "/", None), ("POST", "/predict", b"\x89PNG")):
            connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
            connection.putrequest(method, path, skip_host=True)
            connection.putheader("Host", host)
            if body is not None:
                connection.putheader("Content-Type", "image/png")
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            assert response.status == 421 and "the pad answers only at" in json.load(response)["error"]
            connection.close()
    with urllib.request.urlopen(f"http://localhost:{port}/", timeout=30) as response:  # its own names are fine
        assert response.status == 200


def test_a_cross_origin_post_is_refused(pad: Pad, tmp_path: Path) -> None:
    """A page of another site can post text/plain without a CORS preflight: refused, and so is any post that
    names another origin, or a type it could send; the page's own post is answered."""
    from PIL import Image, ImageDraw

    drawing = Image.new("L", (280, 280), color=255)
    ImageDraw.Draw(drawing).line([(60, 120), (220, 120)], fill=0, width=18)
    drawing.save(tmp_path / "drawing.png")
    body, own = (tmp_path / "drawing.png").read_bytes(), pad.url.rstrip("/")
    assert pad.post(body, headers={"Origin": "http://evil.example", "Content-Type": "text/plain"}) == (
        403, {"error": "drawings are taken only from the pad's own page"})
    assert pad.post(body, headers={"Origin": "http://evil.example", "Content-Type": "image/png"})[0] == 403
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        assert pad.post(body, headers={"Origin": own, "Content-Type": kind})[0] == 415
    status, answer = pad.post(body, headers={"Origin": own, "Content-Type": "image/png"})
    assert status == 200 and len(answer["probabilities"]) == 10


def test_the_page_names_the_model_file_and_its_classes(pad: Pad, idx_run: Path) -> None:
    with urllib.request.urlopen(pad.url, timeout=30) as response:
        page = response.read().decode()
    served = json.loads(page.split('<script id="served" type="application/json">')[1].split("</script>")[0])
    assert served == {"model": str(load_model(idx_run).path), "classes": [str(d) for d in range(10)]}
    assert 'getElementById("model").textContent' in page


def test_an_exported_onnx_file_is_served_too(idx_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    exported = tmp_path / "model.onnx"
    export_model(load_model(idx_run), exported, "onnx")
    served = Pad(exported)
    try:
        from PIL import Image, ImageDraw

        drawing = Image.new("L", (120, 160), color=255)
        ImageDraw.Draw(drawing).line([(30, 20), (90, 20), (50, 140)], fill=0, width=12)
        drawing.save(tmp_path / "seven.png")
        status, answer = served.post((tmp_path / "seven.png").read_bytes())
        (expected,) = predict(load_model(idx_run), [tmp_path / "seven.png"])
        assert status == 200 and answer["probabilities"].index(max(answer["probabilities"])) == expected.index
    finally:
        served.close()


@pytest.mark.parametrize(("arguments", "code", "message"), [
    (["missing.pt"], 1, "ignite-mnist: error: missing.pt: no such checkpoint file; check the path\n"),
    (["missing.onnx"], 1, "ignite-mnist: error: missing.onnx: no such exported model file; check the path\n"),
    (["run", "--port", "-1"], 2,
     "ignite-mnist: error: --port: a port is 0 to 65535, got -1 (see ignite-mnist demo --help)\n"),
])
def test_a_bad_model_or_port_is_one_line(arguments: list[str], code: int, message: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", *arguments]) == code
    assert capsys.readouterr() == (("", message))


def test_a_port_in_use_is_one_line(pad: Pad, idx_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = pad.url.rsplit(":", 1)[1].strip("/")
    assert main(["demo", str(idx_run), "--port", port]) == 1
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"ignite-mnist: error: cannot serve the digit pad on {HOST}:{port} (")
    assert stderr.endswith("pick another port with --port N (0: any free one)\n")


def row_strokes(image: torch.Tensor, threshold: int = 128) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Each run of bright pixels in a row of a ``uint8 (28, 28)`` digit as a stroke ``((x0, y), (x1, y))``,
    in canvas pixels (the centres of the first and last pixel of the run).

    Example:
        >>> digit = torch.zeros(28, 28, dtype=torch.uint8)
        >>> digit[3, 5:8] = 255
        >>> row_strokes(digit)
        [((55, 35), (75, 35))]
    """
    strokes = []
    for y, row in enumerate((image >= threshold).tolist()):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            strokes.append(((start * SCALE + SCALE // 2, y * SCALE + SCALE // 2),
                            ((x - 1) * SCALE + SCALE // 2, y * SCALE + SCALE // 2)))
    return strokes


Stroke = Callable[[list[tuple[float, float]]], None]


def mouse(page: Page) -> Stroke:
    """A stroke through page points: press, move, release the mouse."""
    def stroke(points: list[tuple[float, float]]) -> None:
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()

    return stroke


def finger(page: Page) -> Stroke:
    """A stroke through page points with one finger (touch events over the DevTools protocol)."""
    session = page.context.new_cdp_session(page)

    def stroke(points: list[tuple[float, float]]) -> None:
        for kind, (x, y) in zip(["touchStart"] + ["touchMove"] * (len(points) - 1), points, strict=True):
            session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    return stroke


def draw(page: Page, digit: torch.Tensor, stroke: Stroke) -> str:
    """Clear the canvas, draw ``digit`` as strokes, wait for the page's last answer and return the class shown."""
    page.click("#clear")
    box = page.locator("#canvas").bounding_box()
    left, top = box["x"] + 2, box["y"] + 2  # inside the border
    for (x0, y), (x1, _) in row_strokes(digit):
        stroke([(left + x, top + y) for x in [*range(x0, x1, SCALE), x1]])
    page.wait_for_function("document.body.dataset.state === 'idle'", timeout=60_000)
    return page.inner_text("#answer")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set $CHROMIUM)")
    playwright = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (pip install -e .[dev])")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def mnist_pad(mnist_checkpoint: Path) -> Iterator[Pad]:
    """The pad serving the CNN trained on real MNIST."""
    served = Pad(mnist_checkpoint)
    yield served
    served.close()


def _screenshot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / name))
    if os.environ.get(SCREENSHOT_ENV):  # the docs' pictures
        shutil.copy(folder / name, Path(os.environ[SCREENSHOT_ENV]) / name)


@pytest.mark.integration
def test_real_test_digits_drawn_with_the_mouse_are_recognised(mnist_pad: Pad, mnist_checkpoint: Path,
                                                              browser: Browser, tmp_path: Path) -> None:
    images, labels = load_split_tensors(load_model(mnist_checkpoint).config.data_dir, "mnist", train=False)
    page = browser.new_page(viewport={"width": 720, "height": 400})
    page.goto(mnist_pad.url)
    shown = [draw(page, images[0], mouse(page))]
    _check_the_page_shows_what_predict_says(page, mnist_checkpoint, tmp_path)
    shown += [draw(page, image, mouse(page)) for image in images[1:DIGITS]]
    _screenshot(page, tmp_path, "demo.png")
    expected = [str(label) for label in labels[:DIGITS].tolist()]
    right = sum(a == b for a, b in zip(shown, expected, strict=True))
    assert right >= DIGITS - 1, f"shown {shown}, labels {expected}"


@pytest.mark.integration
def test_a_finger_draws_on_a_phone_sized_page(mnist_pad: Pad, mnist_checkpoint: Path, browser: Browser,
                                              tmp_path: Path) -> None:
    images, labels = load_split_tensors(load_model(mnist_checkpoint).config.data_dir, "mnist", train=False)
    context = browser.new_context(viewport={"width": 390, "height": 720}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(mnist_pad.url)
    shown = [draw(page, images[index], finger(page)) for index in (DIGITS, DIGITS + 1)]
    assert page.evaluate("window.scrollY") == 0  # the strokes drew; they did not scroll the page
    _screenshot(page, tmp_path, "demo-phone.png")
    context.close()
    assert shown == [str(label) for label in labels[DIGITS:DIGITS + 2].tolist()]


def _check_the_page_shows_what_predict_says(page: Page, checkpoint: Path, folder: Path) -> None:
    """The canvas, saved as a PNG file and given to ``predict``, gets the class and probability the page shows."""
    data_url = page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
    (folder / "canvas.png").write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
    (expected,) = predict(load_model(checkpoint), [folder / "canvas.png"])
    assert page.inner_text("#answer") == expected.label
    shown = float(page.get_attribute("#answer", "data-probability"))
    assert shown == pytest.approx(expected.probability, abs=1e-5)

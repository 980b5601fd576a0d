"""The digit pad: a web page on 127.0.0.1 where you draw a digit and watch the model's class probabilities.

``ignite-mnist demo RUN_OR_FILE`` serves it (:func:`serve_pad`); a notebook can
run it in a background thread (:meth:`PadServer.start`) and show it in an
``IFrame``. The page (``demo.html``, a plain HTML canvas with pointer events, so
mouse, pen and finger all draw) posts the drawing as a PNG to ``/predict`` while
you draw, at most one request at a time; the answer is every class's probability,
drawn as bars.

The PNG goes through exactly what ``ignite-mnist predict`` does with an image file:
:func:`ignite_mnist.data.preprocess.preprocess_image` (crop to the strokes, 20 pixels
tall, centred by mass in 28x28, the dataset's normalisation), then the
classifier's ``probabilities`` (a checkpoint's model, or an exported ONNX,
TorchScript or ExecuTorch file). The server is Python's own
``http.server``: no dependency beyond the package's, bound to 127.0.0.1 only,
and a request body larger than :data:`MAX_UPLOAD_BYTES` is refused unread.

Example:
    >>> import json, urllib.request
    >>> from ignite_mnist.data import MNIST, DatasetInfo
    >>> from ignite_mnist.inference.trained import LoadedModel
    >>> from ignite_mnist.models import build_model
    >>> from ignite_mnist.settings.config import TrainConfig
    >>> model = LoadedModel(build_model("mlp").eval(), TrainConfig(), DatasetInfo.of(MNIST), Path("untrained.pt"))
    >>> pad = PadServer(model, port=0).start()
    >>> with open(digit_png, "rb") as png:
    ...     request = urllib.request.Request(pad.url + "predict", data=png.read(), method="POST")
    >>> answer = json.load(urllib.request.urlopen(request))
    >>> len(answer["probabilities"]), answer["classes"][:3]
    (10, ['0', '1', '2'])
    >>> pad.stop()
"""

from __future__ import annotations

import io
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ignite_mnist.errors import IgniteMnistError, first_line

if TYPE_CHECKING:
    from ignite_mnist.inference.classify import Classifier

__all__ = ["DEFAULT_PORT", "HOST", "MAX_UPLOAD_BYTES", "PadServer", "classify_drawing", "serve_pad"]

HOST = "127.0.0.1"  # never another interface: the pad has no authentication
DEFAULT_PORT = 8765
#: The largest drawing accepted; the page's 280x280 PNG is a few kilobytes.
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
REQUEST_TIMEOUT_SECONDS = 30


class _Drawing(io.BytesIO):
    """The posted PNG, named so in the preprocessing's messages ("the drawing: no digit found ...")."""

    def __str__(self) -> str:
        return "the drawing"


def classify_drawing(classifier: Classifier, png: bytes) -> dict[str, Any]:
    """A drawing (PNG or JPEG bytes) -> ``{"classes", "probabilities"}``, or ``{"classes", "error"}``.

    Example:
        >>> from ignite_mnist.data import MNIST, DatasetInfo
        >>> from ignite_mnist.inference.trained import LoadedModel
        >>> from ignite_mnist.models import build_model
        >>> from ignite_mnist.settings.config import TrainConfig
        >>> model = LoadedModel(build_model("mlp").eval(), TrainConfig(), DatasetInfo.of(MNIST), Path("x.pt"))
        >>> classify_drawing(model, b"not a png")["error"]
        'the drawing: not an image Pillow can read (use PNG or JPEG)'
    """
    from ignite_mnist.data.preprocess import ImageError, preprocess_image  # numpy and Pillow, imported when used

    answer: dict[str, Any] = {"classes": list(classifier.classes)}
    try:
        image = preprocess_image(_Drawing(png), mean=classifier.spec.mean, std=classifier.spec.std)
    except ImageError as error:
        return answer | {"error": str(error)}
    probabilities = classifier.probabilities(image[None])[0]
    return answer | {"probabilities": [round(float(p), 6) for p in probabilities]}


def _page() -> bytes:
    return resources.files("ignite_mnist.inference").joinpath("demo.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: PadServer
    timeout = REQUEST_TIMEOUT_SECONDS

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, values: dict[str, Any]) -> None:
        self._send(status, json.dumps(values).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}; the pad is at /"})
            return
        self._send(HTTPStatus.OK, _page(), "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if self.path != "/predict":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing to post to at {self.path}; use /predict"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "send the drawing with a Content-Length"})
            return
        if not 0 < length <= MAX_UPLOAD_BYTES:
            self.close_connection = True  # the body is not read
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST,
                       {"error": f"a drawing is 1 to {MAX_UPLOAD_BYTES} bytes, got {length}"})
            return
        self._json(HTTPStatus.OK, self.server.classify(self.rfile.read(length)))

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would bury the address printed at the start."""


class PadServer(ThreadingHTTPServer):
    """The digit pad's HTTP server on 127.0.0.1 (``port=0``: any free port), serving ``classifier``.

    Raises:
        IgniteMnistError: the port cannot be bound (in use, or not allowed).
    """

    daemon_threads = True

    def __init__(self, classifier: Classifier, port: int = DEFAULT_PORT) -> None:
        self.classifier = classifier
        self._lock = threading.Lock()  # one drawing at a time: runtimes differ in what they allow
        self._thread: threading.Thread | None = None
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as error:
            raise IgniteMnistError(f"cannot serve the digit pad on {HOST}:{port} ({first_line(error)}); "
                                   f"pick another port with --port N (0: any free one)") from None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def classify(self, png: bytes) -> dict[str, Any]:
        with self._lock:
            try:
                return classify_drawing(self.classifier, png)
            except (IgniteMnistError, RuntimeError) as error:  # a runtime refusing the input: said on the page
                return {"classes": list(self.classifier.classes), "error": first_line(error)}

    def start(self) -> PadServer:
        """Serve in a background (daemon) thread, e.g. from a notebook; returns itself."""
        self._thread = threading.Thread(target=self.serve_forever, name="digit-pad", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        self.server_close()


def serve_pad(classifier: Classifier, port: int = DEFAULT_PORT, *, source: str | Path = "the model") -> None:
    """Serve the pad in this thread until Ctrl-C (``KeyboardInterrupt``, raised on) or SIGTERM; prints the address."""
    from ignite_mnist.console import say

    with PadServer(classifier, port) as server:
        say(f"digit pad for {source} at {server.url} (Ctrl-C stops it)")
        server.serve_forever()

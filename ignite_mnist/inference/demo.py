"""The digit pad: a web page on 127.0.0.1 where you draw a digit and watch the model's class probabilities.

``ignite-mnist demo RUN_OR_FILE`` serves it (:func:`serve_pad`); a notebook can
run it in a background thread (:meth:`PadServer.start`) and show it in an
``IFrame``. The page (``demo.html``, a plain HTML canvas with pointer events, so
mouse, pen and finger all draw) names the model file and its classes, and posts
the drawing as a PNG to ``/predict`` while you draw, at most one request at a time;
the answer is every class's probability, drawn as bars.

The PNG goes through exactly what ``ignite-mnist predict`` does with an image file:
:func:`ignite_mnist.data.preprocess.preprocess_image` (crop to the strokes, 20 pixels
tall, centred by mass in 28x28, the dataset's normalisation), then the
classifier's ``probabilities`` (a checkpoint's model, or an exported ONNX,
TorchScript or ExecuTorch file). The server is Python's own ``http.server``: no
dependency beyond the package's. It is a small careful web service
(docs/security.md, "The digit pad"): bound to 127.0.0.1 only; it answers only
requests addressed to itself (``Host`` 127.0.0.1, localhost or [::1] with its port:
DNS rebinding cannot reach it); a ``POST`` needs its own ``Origin`` (or none) and an
image or ``application/octet-stream`` content type, which a foreign page cannot send
without a CORS preflight, which it refuses; each request must arrive whole within
:data:`~ignite_mnist.limits.PAD_REQUEST_SECONDS` of connecting, and only the
classification holds the model's lock; a drawing is at most
:data:`~ignite_mnist.limits.MAX_DRAWING_BYTES` and
:data:`~ignite_mnist.limits.MAX_DRAWING_PIXELS`; at most
:data:`~ignite_mnist.limits.MAX_PAD_CONNECTIONS` connections are served at once.

Example:
    >>> import json, urllib.request
    >>> from ignite_mnist.data import MNIST, DatasetInfo
    >>> from ignite_mnist.inference.trained import LoadedModel
    >>> from ignite_mnist.models import build_model
    >>> from ignite_mnist.settings.config import TrainConfig
    >>> model = LoadedModel(build_model("mlp").eval(), TrainConfig(), DatasetInfo.of(MNIST), Path("untrained.pt"))
    >>> pad = PadServer(model, port=0).start()
    >>> with open(digit_png, "rb") as png:
    ...     request = urllib.request.Request(pad.url + "predict", data=png.read(), method="POST",
    ...                                      headers={"Content-Type": "image/png"})
    >>> answer = json.load(urllib.request.urlopen(request))
    >>> len(answer["probabilities"]), answer["classes"][:3]
    (10, ['0', '1', '2'])
    >>> pad.stop()
"""

from __future__ import annotations

import io
import json
import signal
import socket
import sys
import threading
import time
import warnings
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ignite_mnist._moved import REMOVED_IN
from ignite_mnist.errors import IgniteMnistError, first_line
from ignite_mnist.limits import MAX_DRAWING_BYTES, MAX_DRAWING_PIXELS, MAX_PAD_CONNECTIONS, PAD_REQUEST_SECONDS

if TYPE_CHECKING:
    from ignite_mnist.inference.classify import Classifier

__all__ = ["DEFAULT_PORT", "HOST", "PadServer", "classify_drawing", "serve_pad"]

HOST = "127.0.0.1"  # never another interface: the pad has no authentication
DEFAULT_PORT = 8765
#: The names a browser may reach the pad by (with its port); any other ``Host`` is refused (DNS rebinding).
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
#: Content types a drawing may be posted with: none of them is one a foreign page can send without a preflight.
DRAWING_TYPES = ("image/", "application/octet-stream")
_BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
         b'{"error": "the pad is serving as many connections as it takes at once; try again"}')


class _Drawing(io.BytesIO):
    """The posted PNG, named so in the preprocessing's messages ("the drawing: no digit found ...")."""

    def __str__(self) -> str:
        return "the drawing"


def classify_drawing(classifier: Classifier, png: bytes) -> dict[str, Any]:
    """A drawing (PNG or JPEG bytes, at most :data:`~ignite_mnist.limits.MAX_DRAWING_PIXELS`) ->
    ``{"classes", "probabilities"}``, or ``{"classes", "error"}``.

    Example:
        >>> from ignite_mnist.data import MNIST, DatasetInfo
        >>> from ignite_mnist.inference.trained import LoadedModel
        >>> from ignite_mnist.models import build_model
        >>> from ignite_mnist.settings.config import TrainConfig
        >>> model = LoadedModel(build_model("mlp").eval(), TrainConfig(), DatasetInfo.of(MNIST), Path("x.pt"))
        >>> classify_drawing(model, b"not a png")["error"]
        'the drawing: not a PNG, JPEG, BMP, GIF, TIFF or PNM (PBM, PGM, PPM) image'
    """
    from ignite_mnist.data.preprocess import ImageError, preprocess_image  # numpy and Pillow, imported when used

    answer: dict[str, Any] = {"classes": list(classifier.classes)}
    try:
        image = preprocess_image(_Drawing(png), mean=classifier.spec.mean, std=classifier.spec.std,
                                 max_pixels=MAX_DRAWING_PIXELS)
    except ImageError as error:
        return answer | {"error": str(error)}
    probabilities = classifier.probabilities(image[None])[0]
    return answer | {"probabilities": [round(float(p), 6) for p in probabilities]}


def _page(model_file: str, classes: tuple[str, ...]) -> bytes:
    """``demo.html`` naming the model file and its classes (JSON in a script element, ``<`` ``>`` ``&`` escaped)."""
    described = json.dumps({"model": model_file, "classes": list(classes)})
    for character in "<>&":
        described = described.replace(character, f"\\u{ord(character):04x}")
    page = resources.files("ignite_mnist.inference").joinpath("demo.html").read_bytes()
    return page.replace(b"{{MODEL}}", described.encode())


class _UntilDeadline(io.RawIOBase):
    """A connection's bytes, no read waiting past ``deadline`` (``time.monotonic``): a client that trickles its
    request gets ``TimeoutError`` however it spaces its bytes."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self._connection, self._deadline = connection, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: PadServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the request is read through the deadline instead
        deadline = time.monotonic() + self.server.request_seconds
        self.rfile = io.BufferedReader(_UntilDeadline(self.connection, deadline))

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.connection.settimeout(self.server.request_seconds)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, values: dict[str, Any]) -> None:
        self._send(status, json.dumps(values).encode(), "application/json")

    def _refuse(self, status: HTTPStatus, error: str) -> None:
        self.close_connection = True  # a body is never read after a refusal
        self._json(status, {"error": error})

    def _foreign_host(self) -> bool:
        """Whether the request is addressed to another name (refused: DNS rebinding)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) == 1 and hosts[0].strip().lower() in self.server.hosts:
            return False
        self._refuse(HTTPStatus.MISDIRECTED_REQUEST, f"the pad answers only at {self.server.url}")
        return True

    def do_GET(self) -> None:
        if self._foreign_host():
            return
        if self.path.split("?")[0] != "/":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {self.path}; the pad is at /"})
            return
        self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")

    def do_POST(self) -> None:
        if self._foreign_host():
            return
        if self.path != "/predict":
            self._refuse(HTTPStatus.NOT_FOUND, f"nothing to post to at {self.path}; use /predict")
            return
        refusal = self._refusal()
        if refusal is not None:
            self._refuse(*refusal)
            return
        length = int(self.headers["Content-Length"])
        try:
            drawing = self.rfile.read(length)
        except TimeoutError:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT,
                         f"the drawing did not arrive within {self.server.request_seconds:g} s")
            return
        if len(drawing) < length:  # the client hung up
            self.close_connection = True
            return
        self._json(HTTPStatus.OK, self.server.classify(drawing))

    def _refusal(self) -> tuple[HTTPStatus, str] | None:
        """Why a post to /predict is refused before its body is read (another page's, the wrong kind or size)."""
        origin = self.headers.get_all("Origin") or []
        if origin and (len(origin) > 1 or origin[0].strip().lower() not in self.server.origins):
            return HTTPStatus.FORBIDDEN, "drawings are taken only from the pad's own page"
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not kind.startswith(DRAWING_TYPES):
            return HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "post the drawing as image/png (or application/octet-stream)"
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths or "Transfer-Encoding" in self.headers:
            return HTTPStatus.LENGTH_REQUIRED, "send the drawing with a Content-Length"
        if len(lengths) > 1 or not lengths[0].strip().isdigit():
            return HTTPStatus.BAD_REQUEST, "a Content-Length is one number of bytes"
        length = int(lengths[0])
        if not 0 < length <= MAX_DRAWING_BYTES:
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length > 0 else HTTPStatus.BAD_REQUEST
            return status, f"a drawing is 1 to {MAX_DRAWING_BYTES} bytes, got {length}"
        return None

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would bury the address printed at the start."""


class PadServer(ThreadingHTTPServer):
    """The digit pad's HTTP server on 127.0.0.1 (``port=0``: any free port), serving ``classifier``.

    Args:
        classifier: what classifies (a :class:`~ignite_mnist.inference.trained.LoadedModel` or an exported file).
        port: where to listen (0: any free port).
        model_file: what the page names as the model (default: the classifier's ``path``).
        request_seconds: how long a client has to send its whole request once connected.
        max_connections: connections served at once; more are answered 503 at once.

    Raises:
        IgniteMnistError: the port cannot be bound (in use, or not allowed).
    """

    daemon_threads = True
    request_queue_size = 128  # clients waiting to be accepted (the listen backlog)

    def __init__(self, classifier: Classifier, port: int = DEFAULT_PORT, *, model_file: str | Path | None = None,
                 request_seconds: float = PAD_REQUEST_SECONDS, max_connections: int = MAX_PAD_CONNECTIONS) -> None:
        self.classifier = classifier
        self.request_seconds = request_seconds
        self._lock = threading.Lock()  # one drawing at a time: runtimes differ in what they allow
        self._slots = threading.BoundedSemaphore(max_connections)
        self._thread: threading.Thread | None = None
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as error:
            raise IgniteMnistError(f"cannot serve the digit pad on {HOST}:{port} ({first_line(error)}); "
                                   f"pick another port with --port N (0: any free one)") from None
        bound = self.server_address[1]
        self.hosts = frozenset(f"{name}:{bound}" for name in LOCAL_NAMES) | (
            frozenset(LOCAL_NAMES) if bound == 80 else frozenset())
        self.origins = frozenset(f"http://{host}" for host in self.hosts)
        self.model_file = str(model_file if model_file is not None else getattr(classifier, "path", "the model"))
        self.page = _page(self.model_file, classifier.classes)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def classify(self, png: bytes) -> dict[str, Any]:
        with self._lock:
            try:
                return classify_drawing(self.classifier, png)
            except (IgniteMnistError, RuntimeError) as error:  # a runtime refusing the input: said on the page
                return {"classes": list(self.classifier.classes), "error": first_line(error)}

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, or answer 503 at once when ``max_connections`` are."""
        if not self._slots.acquire(blocking=False):
            try:
                request.setblocking(False)
                request.send(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up or was too slow: nothing said. Anything else: one line, no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)) or error is None:
            return
        print(f"digit pad: a request failed ({type(error).__name__}: {first_line(error)})", file=sys.stderr)

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
            self._thread = None
        self.server_close()


def __getattr__(name: str) -> Any:
    """``MAX_UPLOAD_BYTES`` of 0.1 answers with a ``DeprecationWarning`` until 0.3: it is
    :data:`ignite_mnist.limits.MAX_DRAWING_BYTES` now."""
    if name != "MAX_UPLOAD_BYTES":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.MAX_UPLOAD_BYTES moved to ignite_mnist.limits.MAX_DRAWING_BYTES in ignite-mnist 0.2; "
                  f"the old name goes in {REMOVED_IN}", DeprecationWarning, stacklevel=2)
    return MAX_DRAWING_BYTES


class _Stop(Exception):
    """SIGINT or SIGTERM reached :func:`serve_pad`."""


def serve_pad(classifier: Classifier, port: int = DEFAULT_PORT, *, source: str | Path = "the model") -> None:
    """Serve the pad until SIGINT (Ctrl-C) or SIGTERM, then stop normally; prints the address, then "stopped".

    From another thread than the main one (where signals cannot be caught) it serves until the server's
    ``shutdown()`` is called.
    """
    from ignite_mnist.console import say, say_at_line_start

    with PadServer(classifier, port) as server:
        announcement = f"digit pad for {source} at {server.url} (Ctrl-C stops it)"
        if threading.current_thread() is not threading.main_thread():
            say(announcement)
            server.serve_forever()
            return
        received = _serve_until_signal(server, announcement)
    say_at_line_start(f"digit pad stopped ({received})")


def _serve_until_signal(server: PadServer, announcement: str) -> str:
    """Serve in a background thread while this (main) thread waits for SIGINT or SIGTERM; the signal's name.
    ``announcement`` is printed once the signals are caught, so a signal sent on seeing it stops the pad normally."""
    from ignite_mnist.console import say

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop(signal.Signals(signum).name)

    previous = {}
    try:
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, stop)
        server.start()
        say(announcement)
        while True:
            time.sleep(3600)
    except _Stop as received:
        return str(received)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        server.stop()

"""The digit pad driven with hostile requests on a real server on 127.0.0.1: foreign ``Host`` and ``Origin``
headers, content types a page of another site could post, wrong, huge, negative and doubled lengths, clients
that trickle their bytes or hang up, more clients than it serves at once. Each gets its status; nothing leaks
a CORS header; the server prints nothing.

The server runs in this process (:class:`~ignite_mnist.inference.demo.PadServer`, as ``ignite-mnist demo``
runs it) with a 1-second request deadline, so slow clients are cut off quickly; its handler threads are
joined when it stops, so everything they printed is there when the test looks.
"""

from __future__ import annotations

import contextlib
import io
import json
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_mnist.data import MNIST, DatasetInfo
from ignite_mnist.inference.demo import PadServer
from ignite_mnist.inference.trained import LoadedModel
from ignite_mnist.limits import MAX_DRAWING_BYTES
from ignite_mnist.models import build_model
from ignite_mnist.settings.config import TrainConfig
from tests.security.conftest import count_cases
from tests.security.images import digit_image, png

DEADLINE = 1.0  # seconds a client has for its whole request here (the pad's default: 10)
WAIT = 30  # the longest any answer may take to come (a hang, not a timing: each is milliseconds, or DEADLINE)


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return LoadedModel(build_model("mlp").eval(), TrainConfig(), DatasetInfo.of(MNIST), Path("untrained.pt"))


@pytest.fixture
def pad(model: LoadedModel) -> Iterator[PadServer]:
    server = PadServer(model, port=0, request_seconds=DEADLINE, max_connections=16)
    server.daemon_threads = False  # stop() joins every handler thread: what they print is printed by then
    yield server.start()
    server.stop()


def drawing() -> bytes:
    buffer = io.BytesIO()
    digit_image((280, 280)).save(buffer, "PNG")
    return buffer.getvalue()


def raw_request(method: str, path: str, headers: list[tuple[str, str]], body: bytes = b"",
                version: str = "HTTP/1.1") -> bytes:
    lines = [f"{method} {path} {version}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` and read the answer to the end: its status, headers (lower-case names) and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused before the body was read
            connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:  # the server closed with our unread body in its buffer: after its answer
            pass
    if not answer.startswith(b"HTTP/"):  # http.server answers a request line it cannot parse the HTTP/0.9 way
        return 0, {}, answer
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def post_cases(port: int) -> dict[str, tuple[list[tuple[str, str]], bytes, int]]:
    """POSTs to /predict: name -> (headers, body, the status it must get)."""
    own, page = f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    png_body = drawing()

    def headers(*extra: tuple[str, str], host: str = own, kind: str | None = "image/png",
                length: str | None = None, body: bytes = png_body) -> list[tuple[str, str]]:
        return [("Host", host), *([("Content-Type", kind)] if kind else []),
                ("Content-Length", str(len(body)) if length is None else length), *extra]

    big = png(1100, 1000)
    return {
        "drawing from the page": (headers(("Origin", page)), png_body, 200),
        "drawing from the page at localhost": (headers(("Origin", f"http://localhost:{port}"),
                                                       host=f"localhost:{port}"), png_body, 200),
        "drawing without an Origin (curl)": (headers(), png_body, 200),
        "drawing as application/octet-stream": (headers(kind="application/octet-stream"), png_body, 200),
        "foreign Origin, text/plain": (headers(("Origin", "http://evil.example"), kind="text/plain"), png_body, 403),
        "foreign Origin, image/png": (headers(("Origin", "http://evil.example")), png_body, 403),
        "Origin null": (headers(("Origin", "null")), png_body, 403),
        "Origin of another port": (headers(("Origin", f"http://127.0.0.1:{port + 1}")), png_body, 403),
        "Origin https": (headers(("Origin", f"https://127.0.0.1:{port}")), png_body, 403),
        "two Origins": (headers(("Origin", page), ("Origin", "http://evil.example")), png_body, 403),
        "foreign Host": (headers(host="evil.example"), png_body, 421),
        "text/plain": (headers(("Origin", page), kind="text/plain"), png_body, 415),
        "text/plain; charset": (headers(kind="text/plain; charset=utf-8"), png_body, 415),
        "form": (headers(kind="application/x-www-form-urlencoded"), png_body, 415),
        "multipart form": (headers(kind="multipart/form-data; boundary=x"), png_body, 415),
        "no Content-Type": (headers(kind=None), png_body, 415),
        "no Content-Length": ([("Host", own), ("Content-Type", "image/png")], png_body, 411),
        "chunked": ([("Host", own), ("Content-Type", "image/png"), ("Transfer-Encoding", "chunked")], b"0\r\n\r\n",
                    411),
        "two Content-Lengths": (headers(("Content-Length", "5")), png_body, 400),
        "negative length": (headers(length="-5"), png_body, 400),
        "length not a number": (headers(length="ten"), png_body, 400),
        "length 1e3": (headers(length="1e3"), png_body, 400),
        "zero length": (headers(length="0", body=b""), b"", 400),
        "length over the limit": (headers(length=str(MAX_DRAWING_BYTES + 1)), png_body, 413),
        "enormous length": (headers(length=str(10**40)), png_body, 413),
        "body longer than its length": (headers(length="10"), png_body, 200),
        "body shorter than its length, then nothing": (headers(length=str(len(png_body) + 10)), png_body, 408),
        "not an image": (headers(body=b"hello"), b"hello", 200),
        "drawing over the pixel limit": (headers(body=big), big, 200),
        "post elsewhere": (headers(), png_body, 404),
    }


def other_requests(port: int) -> dict[str, tuple[bytes, int]]:
    own = f"127.0.0.1:{port}"
    return {
        "the page": (raw_request("GET", "/", [("Host", own)]), 200),
        "the page at localhost": (raw_request("GET", "/", [("Host", f"localhost:{port}")]), 200),
        "the page at [::1]": (raw_request("GET", "/", [("Host", f"[::1]:{port}")]), 200),
        "the page at LOCALHOST": (raw_request("GET", "/", [("Host", f"LOCALHOST:{port}")]), 200),
        "foreign Host (DNS rebinding)": (raw_request("GET", "/", [("Host", f"evil.example:{port}")]), 421),
        "Host without the port": (raw_request("GET", "/", [("Host", "127.0.0.1")]), 421),
        "Host with another port": (raw_request("GET", "/", [("Host", "127.0.0.1:1")]), 421),
        "no Host": (raw_request("GET", "/", [], version="HTTP/1.0"), 421),
        "two Hosts": (raw_request("GET", "/", [("Host", own), ("Host", "evil.example")]), 421),
        "traversal": (raw_request("GET", "/../../etc/passwd", [("Host", own)]), 404),
        "CORS preflight": (raw_request("OPTIONS", "/predict", [("Host", own), ("Origin", "http://evil.example"),
                                                               ("Access-Control-Request-Method", "POST")]), 501),
        "PUT": (raw_request("PUT", "/predict", [("Host", own), ("Content-Length", "0")]), 501),
        "garbage (a TLS hello)": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n", 0),
        "a header line of 70,000 bytes": (raw_request("GET", "/", [("Host", own), ("X", "x" * 70_000)]), 431),
        "101 headers": (raw_request("GET", "/", [("Host", own)] + [(f"X-{i}", "1") for i in range(101)]), 431),
    }


def test_hostile_requests_get_their_status_and_the_server_stays_quiet(
        pad: PadServer, capsys: pytest.CaptureFixture[str], record_property) -> None:
    port = pad.server_address[1]
    answers = {name: exchange(port, raw_request("POST", "/elsewhere" if name == "post elsewhere" else "/predict",
                                                headers, body))
               for name, (headers, body, _) in post_cases(port).items()}
    answers |= {name: exchange(port, request) for name, (request, _) in other_requests(port).items()}
    expected = {name: case[-1] for name, case in (post_cases(port) | other_requests(port)).items()}
    assert {name: answer[0] for name, answer in answers.items()} == expected
    for name, (_, headers, body) in answers.items():
        assert not any(header.startswith("access-control-") for header in headers), name
        if headers.get("content-type") == "application/json":
            answer = json.loads(body)
            assert ("probabilities" in answer or "error" in answer) and "\n" not in answer.get("error", ""), name
    assert "more than 1,048,576" in json.loads(answers["drawing over the pixel limit"][2])["error"]
    page = answers["the page"][2].decode()
    assert '"model": "untrained.pt"' in page and '"classes": ["0", "1", "2"' in page
    pad.stop()
    assert capsys.readouterr().err == ""
    count_cases(record_property, "pad requests", len(answers))


def trickle(port: int, data: bytes, interval: float = 0.1, at_once: int = 0) -> tuple[bytes, int]:
    """Send the first ``at_once`` bytes of ``data``, then a byte every ``interval`` seconds until the server
    answers or closes: what it answered (b"" if it closed without a word) and how many bytes were sent by then."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as connection:
        connection.sendall(data[:at_once])
        for sent, byte in enumerate(data[at_once:], start=at_once):
            try:
                connection.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                return b"", sent
            if select.select([connection], [], [], interval)[0]:
                answer = b""
                try:
                    while chunk := connection.recv(65536):
                        answer += chunk
                except ConnectionResetError:
                    pass
                return answer, sent + 1
        raise AssertionError("the server waited for the whole trickle")


def test_slow_clients_are_cut_off_at_the_deadline(pad: PadServer, capsys: pytest.CaptureFixture[str],
                                                 record_property) -> None:
    port = pad.server_address[1]
    page = raw_request("GET", "/", [("Host", f"127.0.0.1:{port}"), ("X-Padding", "p" * 400)])
    answer, sent = trickle(port, page)  # 400+ bytes at 10 a second: 40 s, far past the 1-second deadline
    assert answer == b"" and sent < len(page)
    body = drawing()
    post = raw_request("POST", "/predict", [("Host", f"127.0.0.1:{port}"), ("Content-Type", "image/png"),
                                            ("Content-Length", str(len(body)))], body)
    answer, sent = trickle(port, post, at_once=len(post) - len(body))  # the headers at once; the body trickles
    assert answer.startswith(b"HTTP/1.0 408 ") and b"did not arrive within 1 s" in answer, answer[:200]
    assert sent < len(post)
    pad.stop()
    assert capsys.readouterr().err == ""
    count_cases(record_property, "pad requests", 2)


def hang_up(port: int, request: bytes, *, reset: bool) -> None:
    """Connect, send ``request`` and go away (with a reset: ``SO_LINGER`` 0) without reading the answer."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    if reset:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.sendall(request)
    connection.close()


def test_clients_that_hang_up_leave_nothing_on_the_console(pad: PadServer, capsys: pytest.CaptureFixture[str],
                                                           record_property) -> None:
    port = pad.server_address[1]
    own = f"127.0.0.1:{port}"
    body = drawing()
    post = raw_request("POST", "/predict", [("Host", own), ("Content-Type", "image/png"),
                                            ("Content-Length", str(len(body)))], body)
    cut = raw_request("POST", "/predict", [("Host", own), ("Content-Type", "image/png"),
                                           ("Content-Length", str(len(body)))], body[: len(body) // 2])
    requests = [b"", b"GET / HTT", raw_request("GET", "/", [("Host", own)]), post, cut]
    for request in requests:
        for reset in (False, True):
            hang_up(port, request, reset=reset)
    assert exchange(port, post)[0] == 200  # still serving
    pad.stop()  # joins the handler threads
    assert capsys.readouterr().err == ""
    count_cases(record_property, "pad requests", 2 * len(requests))


def test_more_clients_than_it_serves_at_once_are_told_at_once(model: LoadedModel) -> None:
    server = PadServer(model, port=0, request_seconds=WAIT, max_connections=2).start()
    idle = [socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=WAIT) for _ in range(2)]
    try:
        for connection in idle:
            connection.sendall(b"GET / HTTP/1.1\r\n")  # and nothing more: each holds its place until the deadline
        status, _, body = exchange(server.server_address[1], raw_request("GET", "/", []))
        assert status == 503 and b"as many connections as it takes" in body  # well before the 30-s deadline
    finally:
        for connection in idle:
            connection.close()
        server.stop()


def test_the_listen_backlog_holds_a_hundred_waiting_clients(model: LoadedModel) -> None:
    """With the old backlog of 5, connections past the sixth were not accepted (16 of 100 waited 60 s)."""
    server = PadServer(model, port=0)  # listening, not yet serving: every client waits in the backlog
    port = server.server_address[1]
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(100)]
    try:
        for client in clients:
            client.sendall(raw_request("GET", "/", [("Host", f"127.0.0.1:{port}")]))
        server.start()
        statuses = set()
        for client in clients:
            client.settimeout(WAIT)
            statuses.add(client.recv(12))
        assert statuses == {b"HTTP/1.0 200"}
    finally:
        for client in clients:
            client.close()
        server.stop()


def test_slow_uploads_and_costly_drawings_do_not_hold_back_a_drawing(model: LoadedModel) -> None:
    """Three clients trickle their uploads and three post the costliest drawing allowed (1024x1024 RGBA) over
    and over; a drawing posted meanwhile is answered while the slow ones still wait for theirs (their deadline
    is the pad's default here, 10 s)."""
    pad = PadServer(model, port=0).start()
    port = pad.server_address[1]
    own = f"127.0.0.1:{port}"

    def post(body: bytes) -> bytes:
        return raw_request("POST", "/predict", [("Host", own), ("Content-Type", "image/png"),
                                                ("Content-Length", str(len(body)))], body)

    slow = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(3)]
    for connection in slow:
        connection.sendall(post(drawing())[:-100])  # all but the last 100 bytes: they wait for the rest
    costly, stop = post(png(1024, 1024, 8, 6)), threading.Event()

    def keep_posting() -> None:
        while not stop.is_set():
            assert exchange(port, costly)[0] == 200

    posters = [threading.Thread(target=keep_posting) for _ in range(3)]
    for thread in posters:
        thread.start()
    try:
        started = time.monotonic()
        status, _, body = exchange(port, post(drawing()))
        waited = time.monotonic() - started
        assert status == 200 and "probabilities" in json.loads(body)
        assert all(not select.select([connection], [], [], 0)[0] for connection in slow)  # none answered yet
        print(f"a drawing beside 3 slow uploads and 3 costly drawings: answered in {waited:.3f} s")
    finally:
        stop.set()
        for thread in posters:
            thread.join()
        for connection in slow:
            connection.close()
        pad.stop()

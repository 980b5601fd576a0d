"""How long the digit pad takes to answer a drawing while other clients abuse it.

Starts ``ignite-mnist demo`` (an untrained MLP checkpoint, or ``--model CKPT``) and times the page's kind of
request (a 280x280 PNG, ``Content-Type: image/png``), first on a quiet pad, then while six hostile clients run:
three slow uploads (each announces 100 KB and trickles one byte every half second, reconnecting when cut off)
and three that post costly drawings over and over (the 97 KB 1 x 50,000,000 PNG of the issue, then the most a
drawing may cost now, a 1024 x 1024 RGBA PNG). Quiet and loaded rounds alternate; medians and maxima are
printed. ``--code PATH`` measures another checkout (e.g. the code before the limits).

    python benchmarks/pad_under_load.py [--rounds 3] [--code PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.security.images import digit_image, png  # noqa: E402  (the fuzz tests' crafted files)

DRAWINGS_PER_ROUND = 5


def post(port: int, body: bytes, timeout: float = 120) -> float:
    """POST ``body`` to /predict as the page does; the seconds until the whole answer arrived."""
    request = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
               f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        try:
            connection.sendall(request)
            while connection.recv(65536):
                pass
        except OSError:
            pass
    return time.perf_counter() - started


def slow_upload(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall((f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: image/png\r\n"
                                    f"Content-Length: 100000\r\n\r\n").encode())
                while not stop.wait(0.5):
                    connection.sendall(b"x")
        except OSError:  # cut off: come back
            continue


def costly_posts(port: int, stop: threading.Event, bodies: list[bytes]) -> None:
    while not stop.is_set():
        for body in bodies:
            post(port, body)


def start_pad(model: Path, code: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "ignite_mnist", "demo", str(model), "--port", "0"], env=env,
                               cwd=code, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    return process, int(line.split(" at ")[1].split()[0].rstrip("/").rsplit(":", 1)[1])


def untrained_checkpoint(folder: Path) -> Path:
    import torch

    from ignite_mnist.models import build_model
    from ignite_mnist.settings.config import TrainConfig

    path = folder / "mlp.pt"
    torch.save({"model": build_model("mlp").state_dict(), "config": TrainConfig(model="mlp").to_dict()}, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--code", type=Path, default=REPO, help="the checkout whose ignite_mnist serves the pad")
    args = parser.parse_args()
    buffer = io.BytesIO()
    digit_image((280, 280)).save(buffer, "PNG")
    drawing, costly = buffer.getvalue(), [png(1, 50_000_000), png(1024, 1024, 8, 6)]
    with tempfile.TemporaryDirectory() as folder:
        process, port = start_pad(args.model or untrained_checkpoint(Path(folder)), args.code)
        try:
            post(port, drawing)  # warm-up
            quiet, loaded = [], []
            for _ in range(args.rounds):
                quiet += [post(port, drawing) for _ in range(DRAWINGS_PER_ROUND)]
                stop = threading.Event()
                hostile = [threading.Thread(target=slow_upload, args=(port, stop), daemon=True) for _ in range(3)]
                hostile += [threading.Thread(target=costly_posts, args=(port, stop, costly), daemon=True)
                            for _ in range(3)]
                for thread in hostile:
                    thread.start()
                time.sleep(1)  # the hostile clients are connected and busy
                loaded += [post(port, drawing) for _ in range(DRAWINGS_PER_ROUND)]
                stop.set()
                for thread in hostile:
                    thread.join()
        finally:
            process.terminate()
            process.wait(timeout=60)
    print(f"code: {args.code}")
    for name, times in (("quiet pad", quiet), ("beside 3 slow uploads + 3 costly posters", loaded)):
        print(f"{name:42} drawings {len(times):3}  median {statistics.median(times):7.3f} s  max {max(times):7.3f} s")


if __name__ == "__main__":
    main()

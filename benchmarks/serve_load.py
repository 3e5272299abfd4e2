"""`topfive serve` under load: N clients posting real photos for S seconds, against the library's own
batched throughput on the same photos in the same run.

The server is `python -m topfive serve` in its own process on a free loopback port (nothing else is
ever contacted). The clients are threads of this process, each with one keep-alive connection,
posting the photos (read into memory beforehand) one request after another. The library figure is
`Classifier.predict` over the same photos as bytes, 16 a batch, in this process while the server is
idle: once before the load and once after, and the ratio uses their mean. Both sides decode every
photo; the server adds HTTP, the multipart form and its queue. The CPU time per image of the server's
process against the library's is printed too: on a shared machine it moves far less than wall time.

    PYTHONPATH=src python benchmarks/serve_load.py --seconds 30 --clients 8 --models efficientnet_lite0
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _common import ROOT, machine, photo_set
from topfive import Classifier
from topfive.bench.timing import percentile
from topfive.machine import isa_flags, load_average

HOST = "127.0.0.1"  # loopback only, whatever the arguments


def multipart(photo: bytes, name: str, models: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"models\"\r\n\r\n{models}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + photo + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(port: int, path: str):
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def log_tail(log: Path, chars: int = 4000) -> str:
    text = log.read_text(errors="replace")
    return text if len(text) <= chars else "...\n" + text[-chars:]


def start_server(args, port: int, report_dir: str, log: Path) -> subprocess.Popen:
    """The server, its stderr to `log` (a pipe nobody read would fill up and stall it)."""
    command = [sys.executable, "-m", "topfive", "serve", "--models", args.models, "--runtime", args.runtime,
               "--host", HOST, "--port", str(port), "--batch-window-ms", str(args.batch_window_ms),
               "--batch-size", str(args.batch_size), "--queue", str(max(16, 2 * args.clients)), "--report", report_dir]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "wb") as err:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode}):\n{log_tail(log)}")
        try:
            if get_json(port, "/healthz")["status"] == "ok":
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server did not answer /healthz within 180 s:\n{log_tail(log)}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), over all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def library_rate(classifiers: list[Classifier], photos: list[bytes], rounds: int = 3) -> tuple[float, float]:
    """(photos per second through every model, CPU seconds per photo): Classifier.predict over the
    photos 16 a batch, the median of `rounds` passes."""
    times, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), cpu_seconds(os.getpid())
        for clf in classifiers:
            clf.predict(photos, errors="collect")
        times.append(time.perf_counter() - start)
        cpu.append(cpu_seconds(os.getpid()) - start_cpu)
    return len(photos) / statistics.median(times), statistics.median(cpu) / len(photos)


def client(port: int, bodies: list[tuple[bytes, str]], first: int, warm_until: float, stop_at: float,
           latencies: list[float], errors: list[str], warm: list[float]) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    i = first
    while (now := time.perf_counter()) < stop_at:
        body, kind = bodies[i % len(bodies)]
        i += 1
        try:
            conn.request("POST", "/api/classify", body=body, headers={"Content-Type": kind})
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
            ok, response = False, e
        took = time.perf_counter() - now
        if not ok:  # counted in the warm-up too: a server that fails at all fails the benchmark
            errors.append(str(getattr(response, "status", response)))
        else:
            (latencies if now >= warm_until else warm).append(took)
    conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="measured seconds of load (at most 300)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (at most 64)")
    p.add_argument("--models", default="efficientnet_lite0", help="comma-separated, as `topfive serve --models`")
    p.add_argument("--runtime", default="auto")
    p.add_argument("--photos", type=int, default=64, help="photos of the set, spread over it")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--batch-window-ms", type=float, default=5.0)
    args = p.parse_args()
    if not (0 < args.seconds <= 300 and 0 <= args.warmup <= 60 and 1 <= args.clients <= 64):
        p.error("--seconds must be in (0, 300], --warmup in [0, 60], --clients in [1, 64]")

    paths = [path for path, _ in photo_set(args.photos)]
    photos = [Path(path).read_bytes() for path in paths]
    bodies = [multipart(data, Path(path).name, args.models) for data, path in zip(photos, paths)]
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    classifiers = [Classifier(m, runtime=args.runtime, batch_size=args.batch_size) for m in names]
    print(f"machine: {machine()}; ISA {', '.join(isa_flags()) or 'unknown'}")
    print(f"models: {', '.join(f'{c.name} on {c.runtime.name}' for c in classifiers)}; {len(photos)} photos, "
          f"{sum(map(len, photos)) / len(photos) / 1024:.0f} KB mean")

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "server.log"
        server = start_server(args, port, str(Path(scratch) / "no_report"), log)
        latencies: list[float] = []
        errors: list[str] = []
        warm: list[float] = []
        finished = False
        try:
            before, library_cpu = library_rate(classifiers, photos)
            start, server_cpu = time.perf_counter(), cpu_seconds(server.pid)
            warm_until, stop_at = start + args.warmup, start + args.warmup + args.seconds
            threads = [threading.Thread(target=client, args=(port, bodies, k * len(bodies) // args.clients,
                                                             warm_until, stop_at, latencies, errors, warm))
                       for k in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(args.warmup + args.seconds + 120)
            server_cpu = (cpu_seconds(server.pid) - server_cpu) / max(1, len(latencies) + len(warm))
            stats = get_json(port, "/healthz")["batches"]
            after, _ = library_rate(classifiers, photos)
            finished = True
        finally:
            server.terminate()
            server.wait(30)
            if errors or not finished:
                print(f"the server's log:\n{log_tail(log)}", file=sys.stderr)

    served = len(latencies) / args.seconds
    library = (before + after) / 2
    print(f"load: {args.clients} clients for {args.seconds:.0f} s (after {args.warmup:.0f} s of warm-up), "
          f"batch window {args.batch_window_ms:g} ms, batch size {args.batch_size}")
    if latencies:
        p50, p90, p99 = (1000 * percentile(latencies, q) for q in (0.5, 0.9, 0.99))
        print(f"latency: p50 {p50:.0f} ms, p90 {p90:.0f} ms, p99 {p99:.0f} ms ({len(latencies)} requests)")
    print(f"served: {served:.1f} images/s, errors: {len(errors)}" + (f" ({', '.join(sorted(set(errors))[:5])})" if errors else ""))
    for name, s in stats.items():
        print(f"batches of {name}: {s['batches']}, mean {s['images'] / max(1, s['batches']):.1f} images, largest {s['largest']}")
    print(f"library: {before:.1f} images/s before the load, {after:.1f} after (Classifier.predict, batch {args.batch_size})")
    print(f"ratio: served / library = {served / library:.2f}x; {load_average()}")
    print(f"CPU per image: server {1000 * server_cpu:.1f} ms (its process, over the whole load), "
          f"library {1000 * library_cpu:.1f} ms (Classifier.predict), ratio {server_cpu / library_cpu:.2f}")


if __name__ == "__main__":
    main()

"""Load test of `lmtune serve` from a second process, on loopback only, bounded in count and time.

    .venv/bin/python benchmarks/serve_load.py RUN [--requests 400] [--out benchmarks/results]
    .venv/bin/python benchmarks/serve_load.py RUN --soak 60 [--clients 64]

For micro-batching on (max batch 32) and off (max batch 1), at concurrency 1, 8 and 32: requests/s,
p50/p99 latency and errors. Writes serve_load.json and serve_load.md. --soak S instead keeps --clients clients
posting for S seconds against the default server and reports errors, p50/p99 and the server's RSS growth from
after a warm-up to the end (serve_soak.json).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from shared_data import SST2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: str, port: int, max_batch: int) -> subprocess.Popen:
    lmtune = Path(sys.executable).parent / "lmtune"
    proc = subprocess.Popen([str(lmtune), "serve", run, "--port", str(port), "--max-batch-size", str(max_batch)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not become healthy within 120 s")


def post(client: httpx.Client, port: int, text: str) -> tuple[float, bool]:
    start = time.perf_counter()
    try:
        ok = client.post(f"http://127.0.0.1:{port}/predict", json={"inputs": [text]}).status_code == 200
    except httpx.HTTPError:
        ok = False
    return time.perf_counter() - start, ok


def summary(results: list[tuple[float, bool]], elapsed: float) -> dict:
    latencies = np.array([t for t, ok in results if ok]) * 1000
    return {"requests": len(results), "errors": sum(not ok for _, ok in results),
            "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None}


def load(port: int, texts: list[str], concurrency: int, limit_s: float = 120) -> dict:
    stop_at = time.monotonic() + limit_s

    def one(text: str) -> tuple[float, bool]:
        return (0.0, False) if time.monotonic() > stop_at else post(client, port, text)

    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        results = list(pool.map(one, texts))
        elapsed = time.perf_counter() - start
    return {"concurrency": concurrency, **summary(results, elapsed)}


def rss_kb(pid: int) -> int:
    return int(next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("VmRSS")).split()[1])


def soak(port: int, pid: int, texts: list[str], clients: int, seconds: float) -> dict:
    # Warm-up at the same load: the first batches of each size allocate what later ones reuse.
    load(port, texts * 8, clients)  # 3,200 requests with the default 400 texts: ~15 s here
    before, stop_at = rss_kb(pid), time.monotonic() + seconds
    series: list[float] = []

    def sample() -> None:
        while time.monotonic() < stop_at:
            series.append(round(rss_kb(pid) / 1024, 1))
            time.sleep(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def client_loop(k: int) -> list[tuple[float, bool]]:
        results, i = [], k
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < stop_at:
                results.append(post(client, port, texts[i % len(texts)]))
                i += clients
        return results

    with ThreadPoolExecutor(clients) as pool:
        results = [r for part in pool.map(client_loop, range(clients)) for r in part]
    after = rss_kb(pid)
    return {"clients": clients, "seconds": seconds, **summary(results, seconds),
            "rss_mb_after_warmup": round(before / 1024, 1), "rss_mb_end": round(after / 1024, 1),
            "rss_growth_pct": round(100 * (after - before) / before, 2), "rss_mb_every_5_s": series}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--soak", type=float, help="seconds of --clients clients posting instead of the table")
    parser.add_argument("--clients", type=int, default=64)
    args = parser.parse_args()
    texts = [line.split("\t")[0] for line in (SST2 / "dev.tsv").read_text().splitlines()[1:args.requests + 1]]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.soak:
        port = free_port()
        server = start_server(args.run, port, 32)
        try:
            result = soak(port, server.pid, texts, args.clients, args.soak)
        finally:
            server.terminate()
            server.wait(timeout=60)
        (args.out / "serve_soak.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return
    results = []
    for max_batch in (32, 1):
        port = free_port()
        server = start_server(args.run, port, max_batch)
        try:
            for concurrency in (1, 8, 32):
                results.append({"micro_batching": max_batch > 1, **load(port, texts, concurrency)})
        finally:
            server.terminate()
            server.wait(timeout=60)
    (args.out / "serve_load.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [f"| {'on' if r['micro_batching'] else 'off'} | {r['concurrency']} | {r['requests_per_s']} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} |" for r in results]
    (args.out / "serve_load.md").write_text("\n".join(
        ["| micro-batching | concurrency | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|",
         *rows]) + "\n")
    print((args.out / "serve_load.md").read_text())


if __name__ == "__main__":
    main()

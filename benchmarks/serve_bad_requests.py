"""Bad requests against a live `lmtune serve` on loopback: each must get a clear 4xx, and the server must keep
serving (a good request right after each bad one, and /health at the end).

    .venv/bin/python benchmarks/serve_bad_requests.py RUN [--out benchmarks/results]

Writes serve_bad_requests.json and .md: per case, the status, the start of the JSON error, and whether the
next good request succeeded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
from serve_load import free_port, start_server

JSON = {"content-type": "application/json"}
CASES = {
    "empty body": {"content": b"", "headers": JSON},
    "not JSON": {"content": b"{inputs: [", "headers": JSON},
    "10 MB body": {"content": b'{"inputs": ["' + b"a" * 10_000_000 + b'"]}', "headers": JSON},
    "10,000 inputs": {"json": {"inputs": ["good film"] * 10_000}},
    "input is a number": {"json": {"inputs": [42]}},
    "inputs is a string": {"json": {"inputs": "good film"}},
    "unknown field": {"json": {"inputs": ["good film"], "temperature": 2}},
    "unknown input field": {"json": {"inputs": [{"text": "good film", "question": "why?"}]}},
    "100k-character input": {"json": {"inputs": ["a" * 100_000]}},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    port = free_port()
    server = start_server(args.run, port, 32)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        with httpx.Client(timeout=60) as client:
            for name, request in CASES.items():
                response = client.post(f"{url}/predict", **request)
                good = client.post(f"{url}/predict", json={"inputs": ["a fine film"]})
                rows.append({"case": name, "status": response.status_code, "error": response.text[:120],
                             "next_good_request": good.status_code})
            health = client.get(f"{url}/health").status_code
    finally:
        server.terminate()
        server.wait(30)
    result = {"run": args.run, "cases": rows, "health_after": health,
              "all_4xx": all(400 <= r["status"] < 500 for r in rows),
              "kept_serving": health == 200 and all(r["next_good_request"] == 200 for r in rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_bad_requests.json").write_text(json.dumps(result, indent=2))
    lines = ["| case | status | error (start) | next good request |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['status']} | {r['error'][:70].replace('|', '/')} | {r['next_good_request']} |"
              for r in rows]
    lines.append(f"\nall 4xx: {result['all_4xx']}; kept serving: {result['kept_serving']} (/health {health})")
    (args.out / "serve_bad_requests.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

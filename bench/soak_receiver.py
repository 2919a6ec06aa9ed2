#!/usr/bin/env python3
"""Webhook receiver for bench/soak.sh: records every delivery, answers 200.

    python3 bench/soak_receiver.py --port 18080 [--log FILE] [--fail-rate 0.01]

Every request (any method but GET, any path) is recorded with its
X-Comm100-Delivery-Id and X-Comm100-Attempt headers and its arrival time, then
answered 200 (or 500 with probability --fail-rate, to exercise retries; a
failed attempt is recorded as such and does not count as delivered).

    GET /healthz                   200 "ok"
    GET /summary                   JSON: requests, delivered, distinct ids,
                                   duplicates, longest gap between
                                   consecutive arrivals, attempts histogram
    GET /summary?expected=FILE     also compares with FILE, lines "PREFIX COUNT"
                                   (ids PREFIX-0 .. PREFIX-(COUNT-1)); optional
                                   &parked=FILE (one id a line) is subtracted
                                   from the missing ids; gives missing (lost),
                                   unexpected and samples of both
    GET /ids                       every distinct delivered id, one a line

Standard library only (ThreadingHTTPServer, HTTP/1.1 keep-alive).
"""

import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()
# id -> number of successful (2xx-answered) deliveries
DELIVERED = {}
# arrival times (monotonic-ish wall clock) of successful deliveries, in order
ARRIVALS = []
STATS = {"requests": 0, "failed_on_purpose": 0, "without_id": 0}
ATTEMPTS = {}
STARTED = time.time()


def summary(expected_file=None, parked_file=None):
    with LOCK:
        delivered = dict(DELIVERED)
        arrivals = list(ARRIVALS)
        stats = dict(STATS)
        attempts = dict(ATTEMPTS)
    total = sum(delivered.values())
    gap, gap_at = 0.0, None
    arrivals.sort()
    for a, b in zip(arrivals, arrivals[1:]):
        if b - a > gap:
            gap, gap_at = b - a, a
    out = {
        "requests": stats["requests"],
        "failed_on_purpose": stats["failed_on_purpose"],
        "without_id": stats["without_id"],
        "delivered": total,
        "distinct": len(delivered),
        "duplicates": total - len(delivered),
        "ids_delivered_more_than_once": sum(1 for c in delivered.values() if c > 1),
        "first_arrival": arrivals[0] if arrivals else None,
        "last_arrival": arrivals[-1] if arrivals else None,
        "longest_gap_s": round(gap, 3),
        "longest_gap_started_at": gap_at,
        "attempts": {k: attempts[k] for k in sorted(attempts, key=lambda s: (len(s), s))},
        "uptime_s": round(time.time() - STARTED, 1),
    }
    if expected_file:
        expected = set()
        with open(expected_file) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    prefix, count = parts[0], int(parts[1])
                    expected.update(f"{prefix}-{i}" for i in range(count))
        parked = set()
        if parked_file:
            with open(parked_file) as f:
                parked = {line.strip() for line in f if line.strip()}
        got = set(delivered)
        missing = expected - got
        lost = missing - parked
        unexpected = got - expected
        out.update({
            "expected": len(expected),
            "expected_delivered": len(expected & got),
            "missing": len(missing),
            "parked_of_missing": len(missing & parked),
            "lost": len(lost),
            "lost_sample": sorted(lost)[:20],
            "unexpected": len(unexpected),
            "unexpected_sample": sorted(unexpected)[:20],
        })
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # one write per response, no Nagle: keep-alive clients would otherwise
    # wait ~40 ms (delayed ACK) for the body segment of every response
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = "soak-receiver"
    fail_rate = 0.0
    log_file = None

    def log_message(self, *args):  # no per-request stderr noise
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        q = parse_qs(url.query)
        if url.path == "/healthz":
            return self.reply(200, "ok\n", "text/plain")
        if url.path == "/summary":
            try:
                s = summary(q.get("expected", [None])[0], q.get("parked", [None])[0])
            except OSError as e:
                return self.reply(400, json.dumps({"error": str(e)}) + "\n")
            return self.reply(200, json.dumps(s, indent=1) + "\n")
        if url.path == "/ids":
            with LOCK:
                ids = sorted(DELIVERED)
            return self.reply(200, "".join(i + "\n" for i in ids), "text/plain")
        return self.reply(404, '{"error":"not found"}\n')

    def do_POST(self):
        now = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        did = self.headers.get("X-Comm100-Delivery-Id")
        attempt = self.headers.get("X-Comm100-Attempt", "?")
        fail = self.fail_rate > 0 and random.random() < self.fail_rate
        with LOCK:
            STATS["requests"] += 1
            ATTEMPTS[attempt] = ATTEMPTS.get(attempt, 0) + 1
            if did is None:
                STATS["without_id"] += 1
            elif fail:
                STATS["failed_on_purpose"] += 1
            else:
                DELIVERED[did] = DELIVERED.get(did, 0) + 1
                ARRIVALS.append(now)
            if self.log_file:
                self.log_file.write(f"{now:.6f} {did} {attempt} {'500' if fail else '200'}\n")
        if fail:
            return self.reply(500, '{"ok":false}\n')
        return self.reply(200, '{"ok":true}\n')

    do_PUT = do_POST


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--log", help="append 'time id attempt status' lines to this file")
    p.add_argument("--fail-rate", type=float, default=0.0,
                   help="answer 500 to this fraction of deliveries (default 0)")
    a = p.parse_args(argv)
    Handler.fail_rate = a.fail_rate
    if a.log:
        Handler.log_file = open(a.log, "a", buffering=1 << 16)
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    srv.request_queue_size = 256
    print(f"soak_receiver: listening on http://{a.host}:{a.port}/", file=sys.stderr, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if Handler.log_file:
            Handler.log_file.flush()


def _terminate(*_):
    raise KeyboardInterrupt


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGTERM, _terminate)
    main(sys.argv[1:])

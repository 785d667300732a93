#!/usr/bin/env python3
"""Decision mode, measured (not a test; numbers go to docs/benchmarks.md).

1. CPU and latency per decision: the /nginx front door over HTTP (wrk) and
   Envoy's gRPC Check (h2load, a framed CheckRequest), with a repeated token
   (verified-token cache hit), with the cache off (a signature check every
   time) per algorithm, and with a revoked token (every answer a 401).
2. Side by side, one token (ES256): tokengate alone as the proxy; nginx in
   front of tokengate the proxy; nginx with auth_request to tokengate's
   decision listener, nginx forwarding to the app itself. CPU per request is
   that of every proxy process on the proxy core (nginx and tokengate).

Everything is pinned as in bench-scripts/peers.py (whose helpers this
uses): proxies on core 0, load and upstream on core 1. Rounds interleave;
the median is reported. TOKENGATE_BIN, ROUNDS, DURATION as for peers.py.
Run through bench-scripts/decision.sh.
"""

import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import shutil
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import BIN, DURATION, ROUNDS, children, cpu_ticks, free_port, run_wrk, sh, spawn, wait_http  # noqa: E402



def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def check_request(token):
    """A gRPC-framed envoy.service.auth.v3.CheckRequest for GET /orders/1."""
    entry = field(1, b"authorization") + field(2, b"Bearer " + token.encode())
    http = field(2, b"GET") + field(3, entry) + field(4, b"/orders/1") + field(5, b"app.example")
    message = field(1, field(4, field(2, http)))
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load(url, body_file, seconds):
    out = subprocess.run(
        ["taskset", "-c", peers.LOAD_CORE, "h2load", "-c", "50", "-m", "1", "-t", "1",
         "-D", str(seconds), "--warm-up-time", "1", "-d", body_file,
         "-H", "content-type: application/grpc", "-H", "te: trailers", url],
        capture_output=True, text=True, timeout=seconds + 30,
    ).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    if not (done and rps and mean):
        raise SystemExit("cannot parse h2load output:\n" + out)
    m = re.match(r"([\d.]+)(us|ms|s)", mean.group(1))
    return {"requests": int(done.group(1)), "ok": int(done.group(2)), "rps": float(rps.group(1)),
            "p50": peers.to_ms(*m.groups()), "p99": float("nan")}


def measure(kind, url, pids, tokens_file, script, expect_status):
    if kind == "grpc":
        before = cpu_ticks(pids)
        r = h2load(url, tokens_file, DURATION)
        after = cpu_ticks(pids)
    else:
        run_wrk(url, tokens_file, script, seconds=1)
        before = cpu_ticks(pids)
        r = run_wrk(url, tokens_file, script)
        after = cpu_ticks(pids)
        wrong = r["errors"] if expect_status == 200 else r["requests"] - r["errors"]
        if wrong:
            raise SystemExit(f"{url}: {wrong} answers other than {expect_status}; the setup is wrong")
    r["cpu_us"] = (after - before) * 1e6 / peers.CLK_TCK / max(r["requests"], 1)
    return r


def bench(tmp):
    j = lambda *p: os.path.join(tmp, *p)
    peers.make_keys(j)
    upstream, nginx_port, auth_nginx_port = free_port(), free_port(), free_port()
    ports = {name: (free_port(), free_port(), free_port()) for name in ("tg", "nc")}

    def config(name, cache):
        proxy, admin, decision = ports[name]
        path = j(f"{name}.yaml")
        with open(path, "w") as f:
            f.write(f"""listen: "127.0.0.1:{proxy}"
admin: {{ listen: "127.0.0.1:{admin}" }}
upstream: {{ url: "http://127.0.0.1:{upstream}" }}
reload: {{ watch: false }}
decision: {{ listen: "127.0.0.1:{decision}" }}
auth:
  verify_cache: {{ enabled: {str(cache).lower()} }}
{peers.ISSUERS_YAML}routes:
  - prefix: /
revocation: {{ backend: memory }}
""")
        return path

    tg_config, nc_config = config("tg", True), config("nc", False)
    tokens = {}
    for alg in ("HS256", "RS256", "ES256"):
        out = sh(BIN, "--config", tg_config, "token", "mint", "--sub", "bench", "--ttl", "2h", "--kid", alg,
                 "--count", "1000")
        lines = out.split()
        for n, chosen in (("1", lines[:1]), ("1000", lines)):
            with open(j(f"{alg}.{n}"), "w") as f:
                f.write("\n".join(chosen) + "\n")
        with open(j(f"{alg}.grpc"), "wb") as f:
            f.write(check_request(lines[0]))
        tokens[alg] = lines
    # The revoked token: its own, so it revokes nothing else.
    revoked = sh(BIN, "--config", tg_config, "token", "mint", "--sub", "gone", "--ttl", "2h", "--kid", "ES256").strip()
    with open(j("revoked.1"), "w") as f:
        f.write(revoked + "\n")

    # The /nginx front door's headers; the proxy and nginx ignore them.
    script = peers.write_wrk_script(
        j("decision.lua"), ', ["X-Original-Method"] = "GET", ["X-Original-URI"] = "/orders/1"')
    peers.write_upstream(j, upstream)
    tg_proxy, _, tg_decision = ports["tg"]
    with open(j("front.conf"), "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {j('front.pid')}; error_log stderr error;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream tokengate {{ server 127.0.0.1:{tg_proxy}; keepalive 64; keepalive_requests 1000000; }}
  upstream app {{ server 127.0.0.1:{upstream}; keepalive 64; keepalive_requests 1000000; }}
  upstream decision {{ server 127.0.0.1:{tg_decision}; keepalive 64; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://tokengate; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
  server {{ listen 127.0.0.1:{auth_nginx_port};
    location / {{
      auth_request /_tokengate;
      auth_request_set $tg_subject $upstream_http_x_auth_subject;
      proxy_set_header X-Auth-Subject $tg_subject;
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    }}
    location = /_tokengate {{
      internal;
      proxy_pass http://decision/nginx;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
    }}
  }} }}
""")
    spawn(["nginx", "-c", j("upstream.conf"), "-p", tmp], peers.LOAD_CORE)
    wait_http(f"http://127.0.0.1:{upstream}/")
    tg = spawn([BIN, "--threads", "1", "--config", tg_config], peers.PROXY_CORE,
               env=dict(os.environ, TOKENGATE_LOG="warn"))
    nc = spawn([BIN, "--threads", "1", "--config", nc_config], peers.PROXY_CORE,
               env=dict(os.environ, TOKENGATE_LOG="warn"))
    for name in ("tg", "nc"):
        wait_http(f"http://127.0.0.1:{ports[name][1]}/readyz")
    front = spawn(["nginx", "-c", j("front.conf"), "-p", tmp], peers.PROXY_CORE)
    wait_http(f"http://127.0.0.1:{nginx_port}/")
    front_pids = children(front.pid) or [front.pid]

    payload = json.loads(base64.urlsafe_b64decode(revoked.split(".")[1] + "=="))
    req = urllib.request.Request(f"http://127.0.0.1:{ports['tg'][1]}/revoke", method="POST",
                                 data=json.dumps({"jti": payload["jti"], "exp": payload["exp"]}).encode())
    urllib.request.urlopen(req, timeout=5)

    def dec(name):
        return f"http://127.0.0.1:{ports[name][2]}/nginx"

    def grpc(name):
        return f"http://127.0.0.1:{ports[name][2]}/envoy.service.auth.v3.Authorization/Check"

    cases = []
    for alg in ("HS256", "RS256", "ES256"):
        cases.append((f"decision HTTP, {alg}, cache hit", "http", dec("tg"), [tg.pid], j(f"{alg}.1"), 200))
    for alg in ("HS256", "RS256", "ES256"):
        cases.append((f"decision HTTP, {alg}, cache off (1,000 tokens)", "http", dec("nc"), [nc.pid],
                      j(f"{alg}.1000"), 200))
    cases.append(("decision HTTP, revoked ES256 (401)", "http", dec("tg"), [tg.pid], j("revoked.1"), 401))
    for alg in ("HS256", "ES256"):
        cases.append((f"decision gRPC, {alg}, cache hit", "grpc", grpc("tg"), [tg.pid], j(f"{alg}.grpc"), 200))
    for alg in ("HS256", "RS256", "ES256"):
        cases.append((f"decision gRPC, {alg}, cache off", "grpc", grpc("nc"), [nc.pid], j(f"{alg}.grpc"), 200))
    side = [
        ("tokengate proxy alone, ES256", f"http://127.0.0.1:{tg_proxy}/orders/1", [tg.pid]),
        ("nginx -> tokengate proxy, ES256", f"http://127.0.0.1:{nginx_port}/orders/1", [tg.pid] + front_pids),
        ("nginx auth_request -> tokengate decision, ES256", f"http://127.0.0.1:{auth_nginx_port}/orders/1",
         [tg.pid] + front_pids),
    ]
    for name, url, pids in side:
        cases.append((name, "http", url, pids, j("ES256.1"), 200))

    results = {c[0]: [] for c in cases}
    for rnd in range(ROUNDS):
        for name, kind, url, pids, tokens_file, status in cases:
            r = measure(kind, url, pids, tokens_file, script, status)
            results[name].append(r)
            print(f"round {rnd + 1}/{ROUNDS} {name:52} {r['rps']:9.0f} req/s  cpu {r['cpu_us']:6.1f} us/req",
                  file=sys.stderr, flush=True)

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    print(f"\nmachine: {os.cpu_count()} cores; proxies on core {peers.PROXY_CORE}, load and upstream on core "
          f"{peers.LOAD_CORE}; median of {ROUNDS} interleaved rounds of {DURATION} s; gRPC by h2load (mean "
          f"latency; it reports no percentiles)\n")
    print("| case | req/s | p50 / mean ms | p99 ms | CPU µs/request |")
    print("|---|---:|---:|---:|---:|")
    for name, kind, *_ in cases:
        p99 = "—" if kind == "grpc" else f"{med(name, 'p99'):.2f}"
        print(f"| {name} | {med(name, 'rps'):,.0f} | {med(name, 'p50'):.2f} | {p99} | {med(name, 'cpu_us'):.1f} |")
    return 0


def main():
    tmp = tempfile.mkdtemp(prefix="tokengate-decision-")
    try:
        return bench(tmp)
    finally:
        peers.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""User-space instructions per request, counted by valgrind's callgrind:
deterministic where wall-clock CPU time on a shared VM moves by ±15%, so a
change of a few percent can be judged. Kernel time is not counted.

tokengate runs under callgrind with collection off; for each case the
script sends WARMUP requests, switches collection on, sends N requests over
one keep-alive connection, dumps the counters and reads the total. Run
through bench-scripts/instructions.sh.  TOKENGATE_BIN picks the binary; N (2000).
"""

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TOKENGATE_BIN") or os.path.join(ROOT, "target", "release", "tokengate")
N = int(os.environ.get("N", "2000"))
WARMUP = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    tmp = tempfile.mkdtemp(prefix="tokengate-ir-")
    procs = []
    try:
        up, port, admin = free_port(), free_port(), free_port()
        with open(os.path.join(tmp, "up.conf"), "w") as f:
            f.write(f"""worker_processes 1; daemon off; pid {tmp}/up.pid; error_log stderr error;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{up}; location / {{ return 200 "ok\\n"; }} }} }}
""")
        procs.append(subprocess.Popen(["nginx", "-c", f"{tmp}/up.conf", "-p", tmp], stderr=subprocess.DEVNULL))
        for name in ("dev.yaml", "dev-hs256-secret.DEVELOPMENT-ONLY.txt"):
            shutil.copy(os.path.join(ROOT, "config", name), tmp)
        cfg = open(f"{tmp}/dev.yaml").read()
        cfg = (cfg.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:9090", f"127.0.0.1:{admin}")
               .replace("127.0.0.1:3000", f"127.0.0.1:{up}"))
        open(f"{tmp}/dev.yaml", "w").write(cfg)
        nocache_port, nocache_admin = free_port(), free_port()
        open(f"{tmp}/nocache.yaml", "w").write(
            cfg.replace(f"127.0.0.1:{port}", f"127.0.0.1:{nocache_port}")
               .replace(f"127.0.0.1:{admin}", f"127.0.0.1:{nocache_admin}")
               .replace("  leeway: 30s\n", "  leeway: 30s\n  verify_cache: { enabled: false }\n"))
        mint = lambda n: subprocess.run([BIN, "--config", f"{tmp}/dev.yaml", "token", "mint", "--sub", "bench",
                                         "--ttl", "1h", "--count", str(n)], capture_output=True, text=True,
                                        check=True).stdout.split()
        one, many = mint(1)[0], mint(N + WARMUP)
        rows = []
        nginx_port = free_port()
        with open(os.path.join(tmp, "px.conf"), "w") as f:
            f.write(f"""worker_processes 1; daemon off; master_process off; pid {tmp}/px.pid; error_log stderr error;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream app {{ server 127.0.0.1:{up}; keepalive 16; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
        runs = (
            ("nginx", ["nginx", "-c", f"{tmp}/px.conf", "-p", tmp], nginx_port, f"http://127.0.0.1:{nginx_port}/",
             [("nginx 1.22 plain reverse proxy (reference)", "/x", [one])]),
            ("dev", [BIN, "--threads", "1", "--config", f"{tmp}/dev.yaml"], port, f"http://127.0.0.1:{admin}/readyz",
             [("tokengate public route", "/public/x", [one]), ("tokengate HS256, repeated token", "/x", [one])]),
            ("nocache", [BIN, "--threads", "1", "--config", f"{tmp}/nocache.yaml"], nocache_port,
             f"http://127.0.0.1:{nocache_admin}/readyz", [("tokengate HS256, cache off, rotating tokens", "/x", many)]),
        )
        for label, cmd, p, ready_url, cases in runs:
            out = f"{tmp}/cg.{label}.out"
            vg = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"] + cmd,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=dict(os.environ, TOKENGATE_LOG="warn"))
            procs.append(vg)
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(ready_url, timeout=2)
                    break
                except urllib.error.HTTPError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("tokengate under valgrind did not become ready")
                    time.sleep(0.2)
            for name, path, tokens in cases:
                conn = http.client.HTTPConnection("127.0.0.1", p, timeout=30)

                def send(i):
                    conn.request("GET", path, headers={"Authorization": "Bearer " + tokens[i % len(tokens)]})
                    r = conn.getresponse()
                    r.read()
                    if r.status != 200:
                        raise SystemExit(f"{name}: status {r.status}")

                for i in range(WARMUP):
                    send(i)
                subprocess.run(["callgrind_control", "-z", str(vg.pid)], capture_output=True, check=True)
                subprocess.run(["callgrind_control", "-i", "on", str(vg.pid)], capture_output=True, check=True)
                for i in range(WARMUP, WARMUP + N):
                    send(i)
                before = set(os.listdir(tmp))
                subprocess.run(["callgrind_control", "-d", str(vg.pid)], capture_output=True, check=True)
                subprocess.run(["callgrind_control", "-i", "off", str(vg.pid)], capture_output=True, check=True)
                dumps = sorted(set(os.listdir(tmp)) - before)
                text = "".join(open(os.path.join(tmp, d)).read() for d in dumps if d.startswith("cg."))
                if os.environ.get("KEEP_DUMPS"):
                    # For callgrind_annotate: where the instructions went.
                    os.makedirs(os.environ["KEEP_DUMPS"], exist_ok=True)
                    for i, d in enumerate(d for d in dumps if d.startswith("cg.")):
                        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
                        shutil.copy(os.path.join(tmp, d), os.path.join(os.environ["KEEP_DUMPS"], f"{slug}.{i}.out"))
                m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
                if not m:
                    raise SystemExit(f"{name}: no totals in the callgrind dump")
                rows.append((name, int(m.group(1)) / N))
                conn.close()
            vg.send_signal(signal.SIGTERM)
            vg.wait(60)
        print(f"binary: {BIN}; {N} requests per case over one keep-alive connection, after {WARMUP} warm-up")
        print("| case | user-space instructions per request | vs nginx |")
        print("|---|---:|---:|")
        for name, ir in rows:
            print(f"| {name} | {ir:,.0f} | {ir / rows[0][1]:.2f}× |")
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tokengate side by side with nginx (plain reverse proxy) and HAProxy 2.6
(plain, and jwt_verify with alg/exp/iss/aud rules), on this machine, in one run.

Every proxy is pinned to core 0 with one worker thread; wrk and the upstream
(nginx returning 200) share core 1. Runs are interleaved over several rounds
and the median round is reported. Proxy CPU time per request comes from
/proc/PID/stat before and after each run. Run through bench-scripts/peers.sh, which
installs the tools and builds the binary.

Environment: ROUNDS (3), DURATION seconds per run (5), CONNECTIONS (50),
TOKENS rotating tokens (1000), ONLY (a regex: the cases whose name it
matches, e.g. 'public|ES256 x1$'; nginx plain always runs), TOKENGATE_BIN
(default target/release/tokengate),
BASELINE (another tokengate binary, e.g. the previous commit's: its public
route and HS256/ES256 cases run interleaved with the others, for before/after).
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TOKENGATE_BIN") or os.path.join(ROOT, "target", "release", "tokengate")
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "50"))
N_TOKENS = int(os.environ.get("TOKENS", "1000"))
ONLY = os.environ.get("ONLY")
BASELINE = os.environ.get("BASELINE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROXY_CORE, LOAD_CORE = "0", "1"
ISSUER, AUDIENCE = "https://issuer.bench", "bench-app"
# The `auth.issuers` of every benchmark config: one key per algorithm,
# kid = the algorithm, files from make_keys().
ISSUERS_YAML = f"""  issuers:
    - issuer: "{ISSUER}"
      audiences: ["{AUDIENCE}"]
      keys:
        - {{ kid: HS256, algorithm: HS256, secret_file: hs.secret }}
        - {{ kid: RS256, algorithm: RS256, public_key_file: rsa.pub, private_key_file: rsa.key }}
        - {{ kid: ES256, algorithm: ES256, public_key_file: ec.pub, private_key_file: ec.key }}
        - {{ kid: EdDSA, algorithm: EdDSA, public_key_file: ed.pub, private_key_file: ed.key }}
"""

procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, core, **kw):
    p = subprocess.Popen(["taskset", "-c", core] + args, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True, **kw)
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def cleanup(*_):
    for p in procs:
        try:
            stop(p)
        except ProcessLookupError:
            pass


def wait_http(url, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return True
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return True
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit(f"{url} did not come up")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url, tokens_file, script, seconds=DURATION):
    path = "/" + url.split("/", 3)[3]
    env = dict(os.environ, TOKENS_FILE=tokens_file, REQ_PATH=path)
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s",
         "--latency", "-s", script, url],
        capture_output=True, text=True, env=env, timeout=seconds + 30,
    ).stdout
    m = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not (m and rps and p50 and p99):
        raise SystemExit("cannot parse wrk output:\n" + out)
    return {
        "requests": int(m.group(1)),
        "rps": float(rps.group(1)),
        "p50": to_ms(*p50.groups()),
        "p99": to_ms(*p99.groups()),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def measure(name, url, pids, tokens_file, script):
    # One second of the same load first: connection pools, caches and CPU
    # frequency settle, so every case starts warm whatever ran before it.
    run_wrk(url, tokens_file, script, seconds=1)
    before = cpu_ticks(pids)
    r = run_wrk(url, tokens_file, script)
    after = cpu_ticks(pids)
    r["cpu_us"] = (after - before) * 1e6 / CLK_TCK / max(r["requests"], 1)
    if r["errors"]:
        raise SystemExit(f"{name}: {r['errors']} non-2xx responses; the setup is wrong")
    return r


def main():
    signal.signal(signal.SIGTERM, cleanup)
    tmp = tempfile.mkdtemp(prefix="tokengate-peers-")
    try:
        return bench(tmp)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout


def make_keys(j):
    """An HS256 secret and RSA 2048, P-256 and Ed25519 key pairs, in j()."""
    with open(j("hs.secret"), "w") as f:
        f.write(sh("openssl", "rand", "-hex", "32").strip())
    sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", j("rsa.key"))
    sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", j("ec.key"))
    sh("openssl", "genpkey", "-algorithm", "ed25519", "-out", j("ed.key"))
    for k in ("rsa", "ec", "ed"):
        sh("openssl", "pkey", "-in", j(f"{k}.key"), "-pubout", "-out", j(f"{k}.pub"))


def write_wrk_script(path, extra_headers=""):
    """A wrk script sending GET REQ_PATH with the tokens of TOKENS_FILE in
    turn as bearer tokens; `extra_headers` are more Lua table entries."""
    with open(path, "w") as f:
        f.write("""local tokens = {}
for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = "Bearer " .. line end
local path = os.getenv("REQ_PATH") or "/"
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", path, {["Authorization"] = tokens[i]""" + extra_headers + """})
end
""")
    return path


def write_upstream(j, port):
    """j("upstream.conf"): the app, nginx answering 200 on `port`."""
    with open(j("upstream.conf"), "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {j('upstream.pid')}; error_log stderr error;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port} reuseport; location / {{ return 200 "ok\\n"; }} }} }}
""")


def bench(tmp):
    j = lambda *p: os.path.join(tmp, *p)
    make_keys(j)

    upstream_port, nginx_port, haproxy_port, tg_port, tg_admin = (free_port() for _ in range(5))
    nc_port, nc_admin = free_port(), free_port()
    tg_config = j("tokengate.yaml")
    with open(tg_config, "w") as f:
        f.write(f"""listen: "127.0.0.1:{tg_port}"
admin: {{ listen: "127.0.0.1:{tg_admin}" }}
upstream: {{ url: "http://127.0.0.1:{upstream_port}" }}
reload: {{ watch: false }}
auth:
{ISSUERS_YAML}routes:
  - prefix: /public/
    public: true
  - prefix: /
revocation: {{ backend: memory }}
""")
    # The same with the verified-token cache off: every request verifies a
    # signature, whatever the token mix (1,000 rotating tokens fit in the cache).
    nc_config = j("tokengate-nocache.yaml")
    with open(nc_config, "w") as f:
        f.write(open(tg_config).read()
                .replace(f"127.0.0.1:{tg_port}", f"127.0.0.1:{nc_port}")
                .replace(f"127.0.0.1:{tg_admin}", f"127.0.0.1:{nc_admin}")
                .replace("auth:\n", "auth:\n  verify_cache: { enabled: false }\n"))
    algs = ["HS256", "RS256", "ES256", "EdDSA"]
    tokens = {}
    for alg in algs:
        out = sh(BIN, "--config", tg_config, "token", "mint", "--sub", "bench-user", "--ttl", "2h",
                 "--kid", alg, "--count", str(N_TOKENS))
        with open(j(f"{alg}.many"), "w") as f:
            f.write(out)
        with open(j(f"{alg}.one"), "w") as f:
            f.write(out.splitlines()[0] + "\n")
        tokens[alg] = {"1": j(f"{alg}.one"), str(N_TOKENS): j(f"{alg}.many")}

    script = write_wrk_script(j("tokens.lua"))

    # The upstream: nginx answering 200 on core 1 (beside wrk).
    write_upstream(j, upstream_port)
    with open(j("nginx.conf"), "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {j('nginx.pid')}; error_log stderr error;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    hs_secret = open(j("hs.secret")).read().strip()
    haproxy_jwt_port = free_port()
    with open(j("haproxy.cfg"), "w") as f:
        f.write(f"""global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend plain
  bind 127.0.0.1:{haproxy_port}
  default_backend app
frontend jwt
  bind 127.0.0.1:{haproxy_jwt_port}
  # The checks tokengate makes: alg pinned per key, signature, exp, iss, aud.
  http-request deny unless {{ req.hdr(authorization) -m found }}
  http-request set-var(txn.alg) http_auth_bearer,jwt_header_query('$.alg')
  http-request set-var(txn.iss) http_auth_bearer,jwt_payload_query('$.iss')
  http-request set-var(txn.aud) http_auth_bearer,jwt_payload_query('$.aud')
  http-request set-var(txn.exp) http_auth_bearer,jwt_payload_query('$.exp','int')
  http-request deny unless {{ var(txn.alg) -m str HS256 RS256 ES256 }}
  http-request deny unless {{ var(txn.iss) -m str {ISSUER} }}
  http-request deny unless {{ var(txn.aud) -m str {AUDIENCE} }}
  http-request set-var(txn.now) date()
  http-request deny if {{ var(txn.exp),sub(txn.now) -m int lt 0 }}
  http-request set-var(txn.ok) http_auth_bearer,jwt_verify(txn.alg,"{hs_secret}") if {{ var(txn.alg) -m str HS256 }}
  http-request set-var(txn.ok) http_auth_bearer,jwt_verify(txn.alg,"{j('rsa.pub')}") if {{ var(txn.alg) -m str RS256 }}
  http-request set-var(txn.ok) http_auth_bearer,jwt_verify(txn.alg,"{j('ec.pub')}") if {{ var(txn.alg) -m str ES256 }}
  http-request deny unless {{ var(txn.ok) -m int 1 }}
  default_backend app
backend app
  server app 127.0.0.1:{upstream_port}
""")

    spawn(["nginx", "-c", j("upstream.conf"), "-p", tmp], LOAD_CORE)
    wait_http(f"http://127.0.0.1:{upstream_port}/")
    nginx = spawn(["nginx", "-c", j("nginx.conf"), "-p", tmp], PROXY_CORE)
    wait_http(f"http://127.0.0.1:{nginx_port}/")
    haproxy = spawn(["haproxy", "-db", "-f", j("haproxy.cfg")], PROXY_CORE)
    wait_http(f"http://127.0.0.1:{haproxy_port}/")

    started = time.monotonic()
    tg = spawn([BIN, "--threads", "1", "--config", tg_config], PROXY_CORE,
               env=dict(os.environ, TOKENGATE_LOG="warn"))
    wait_http(f"http://127.0.0.1:{tg_admin}/readyz")
    ready_ms = (time.monotonic() - started) * 1000
    time.sleep(0.5)
    idle_rss = status_kb(tg.pid, "VmRSS")
    nc = spawn([BIN, "--threads", "1", "--config", nc_config], PROXY_CORE,
               env=dict(os.environ, TOKENGATE_LOG="warn"))
    wait_http(f"http://127.0.0.1:{nc_admin}/readyz")

    if BASELINE:
        bl_port, bl_admin = free_port(), free_port()
        bl_config = j("tokengate-baseline.yaml")
        with open(bl_config, "w") as f:
            f.write(open(tg_config).read()
                    .replace(f"127.0.0.1:{tg_port}", f"127.0.0.1:{bl_port}")
                    .replace(f"127.0.0.1:{tg_admin}", f"127.0.0.1:{bl_admin}"))
        bl = spawn([BASELINE, "--threads", "1", "--config", bl_config], PROXY_CORE,
                   env=dict(os.environ, TOKENGATE_LOG="warn"))
        wait_http(f"http://127.0.0.1:{bl_admin}/readyz")

    nginx_pids = children(nginx.pid) or [nginx.pid]
    # Sanity: every proxy accepts a valid token and refuses a tampered one.
    for alg in ("HS256", "RS256", "ES256"):
        good = open(tokens[alg]["1"]).read().strip()
        bad = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        for port in (haproxy_jwt_port, tg_port):
            for tok, want in ((good, 200), (bad, 403 if port == haproxy_jwt_port else 401)):
                req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": "Bearer " + tok})
                try:
                    code = urllib.request.urlopen(req, timeout=2).status
                except urllib.error.HTTPError as e:
                    code = e.code
                if code != want:
                    raise SystemExit(f"sanity: port {port} {alg} {'good' if tok == good else 'tampered'} -> {code}, want {want}")

    cases = [("direct", f"http://127.0.0.1:{upstream_port}/", [], "HS256", "1"),
             ("nginx plain", f"http://127.0.0.1:{nginx_port}/", nginx_pids, "HS256", "1"),
             ("haproxy plain", f"http://127.0.0.1:{haproxy_port}/", [haproxy.pid], "HS256", "1"),
             ("tokengate public route", f"http://127.0.0.1:{tg_port}/public/", [tg.pid], "HS256", "1")]
    for n in ("1", str(N_TOKENS)):
        for alg in ("HS256", "RS256", "ES256"):
            cases.append((f"haproxy jwt {alg} x{n}", f"http://127.0.0.1:{haproxy_jwt_port}/", [haproxy.pid], alg, n))
        for alg in algs:
            cases.append((f"tokengate {alg} x{n}", f"http://127.0.0.1:{tg_port}/", [tg.pid], alg, n))
    if BASELINE:
        cases.append(("baseline public route", f"http://127.0.0.1:{bl_port}/public/", [bl.pid], "HS256", "1"))
        for alg in ("HS256", "ES256"):
            cases.append((f"baseline {alg} x1", f"http://127.0.0.1:{bl_port}/", [bl.pid], alg, "1"))
    for alg in algs:
        cases.append((f"tokengate no-cache {alg} x{N_TOKENS}", f"http://127.0.0.1:{nc_port}/", [nc.pid], alg, str(N_TOKENS)))
    if ONLY:
        cases = [c for c in cases if re.search(ONLY, c[0]) or c[0] == "nginx plain"]

    results = {c[0]: [] for c in cases}
    for rnd in range(ROUNDS):
        for name, url, pids, alg, n in cases:
            r = measure(name, url, pids, tokens[alg][n], script)
            results[name].append(r)
            print(f"round {rnd + 1}/{ROUNDS} {name:26} {r['rps']:9.0f} req/s  p99 {r['p99']:6.2f} ms  "
                  f"cpu {r['cpu_us']:6.1f} us/req", file=sys.stderr, flush=True)
    load_rss = status_kb(tg.pid, "VmHWM")

    def med(name, key):
        return statistics.median(r[key] for r in results[name])

    base_cpu = med("nginx plain", "cpu_us")
    base_p99 = med("nginx plain", "p99")
    print(f"\nmachine: {os.cpu_count()} cores; proxies on core {PROXY_CORE}, wrk -t1 -c{CONNECTIONS} "
          f"-d{DURATION}s + upstream on core {LOAD_CORE}; median of {ROUNDS} interleaved rounds\n")
    print("| proxy, token | req/s | p50 ms | p99 ms | CPU µs/req | CPU vs nginx | req/s vs HAProxy jwt |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, *_ in cases:
        rps, cpu = med(name, "rps"), med(name, "cpu_us")
        vs_nginx = f"{cpu / base_cpu:.2f}×" if name != "direct" else "—"
        peer = None
        m = re.match(r"tokengate (?:no-cache )?(\w+) x(\d+)", name)
        if m and f"haproxy jwt {m.group(1)} x{m.group(2)}" in results:
            peer = med(f"haproxy jwt {m.group(1)} x{m.group(2)}", "rps")
        vs_peer = f"{rps / peer:.2f}×" if peer else "—"
        cpu_s = f"{cpu:.1f}" if name != "direct" else "—"
        print(f"| {name} | {rps:,.0f} | {med(name, 'p50'):.2f} | {med(name, 'p99'):.2f} | {cpu_s} | {vs_nginx} | {vs_peer} |")
    print(f"\ntokengate: start-up to /readyz 200 {ready_ms:.0f} ms; idle RSS {idle_rss / 1024:.1f} MB; "
          f"peak RSS under the load {load_rss / 1024:.1f} MB; nginx plain p99 {base_p99:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

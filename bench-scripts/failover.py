"""Revocation propagation before, during and after a Sentinel or Cluster failover.

Real processes on loopback: a master, two replicas, three sentinels
(down-after-milliseconds 1000) and SIDECARS tokengate sidecars on one
`redis+sentinel://` URL; or, with --cluster, a Redis Cluster of three
masters with a replica each plus a second replica for the master of
tokengate's slot (cluster-node-timeout 1000), and a `redis+cluster://` URL. A writer revokes one jti every INTERVAL seconds
through the revoke script on the master the sentinels name (as an issuer
would); each revocation is clocked from the script's return until every
sidecar refuses a token with that jti. The master is killed after the
"before" phase; the "during" phase runs until every sidecar refuses a
revocation written through the new master; then "after".

Also: session refresh latency through the sentinel (or cluster) URL and
through a direct URL to the same master (after the failover).

    python3 bench-scripts/failover.py [--cluster]    (TOKENGATE_BIN, default target/release/tokengate)
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TOKENGATE_BIN", os.path.join(ROOT, "target/release/tokengate"))
SIDECARS = int(os.environ.get("SIDECARS", "10"))
PER_PHASE = int(os.environ.get("PER_PHASE", "50"))
INTERVAL = 0.02
MASTER = "bench-master"
CLUSTER = "--cluster" in sys.argv[1:]
TAG_SLOT = 3372  # CLUSTER KEYSLOT {tokengate}
SECRET = open(os.path.join(ROOT, "tests/fixtures/keys/hs32.secret"), "rb").read().rstrip(b"\n")
REVOKE = open(os.path.join(ROOT, "src/revocation/revoke.lua")).read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(jti):
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "kid": "HS256"}).encode())
    claims = b64(json.dumps({"iss": "https://issuer.test/", "aud": "app", "sub": "bench",
                             "iat": now, "exp": now + 3600, "jti": jti}).encode())
    signature = hmac.new(SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(signature)}"


def config_text(listen, admin, control, app, redis_url):
    return f"""listen: "127.0.0.1:{listen}"
admin: {{ listen: "127.0.0.1:{admin}" }}
upstream: {{ url: "http://127.0.0.1:{app}" }}
auth:
  issuers:
    - issuer: "https://issuer.test/"
      audiences: [app]
      keys: [{{ kid: HS256, algorithm: HS256, secret_file: "{ROOT}/tests/fixtures/keys/hs32.secret" }}]
routes:
  - prefix: /
revocation:
  backend: redis
  redis: {{ url: "{redis_url}", connect_timeout: 300ms, command_timeout: 500ms, check_interval: 200ms }}
sessions:
  signing_key: {{ private_key_file: "{ROOT}/tests/fixtures/keys/ec256.key.pem" }}
  control: {{ listen: "127.0.0.1:{control}" }}
"""


def wait_for(condition, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def readyz(admin):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1).status == 200
    except Exception:
        return False


def ready(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] * 1000


def redis_node(work, name, port, spawn, extra=()):
    d = os.path.join(work, name)
    os.makedirs(d)
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", d, "--repl-diskless-sync-delay", "0", *extra]
    return spawn(args)


def start_sentinel(work, spawn):
    redis = {}
    master_port = free_port()
    for role in ["master", "replica-1", "replica-2"]:
        port = master_port if role == "master" else free_port()
        extra = [] if role == "master" else ["--replicaof", "127.0.0.1", str(master_port)]
        redis[port] = redis_node(work, role, port, spawn, extra)
    sentinel_ports = []
    for i in range(3):
        port = free_port()
        conf = os.path.join(work, f"sentinel-{i}.conf")
        with open(conf, "w") as f:
            f.write(f"port {port}\nbind 127.0.0.1\ndir {work}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} 1000\n"
                    f"sentinel failover-timeout {MASTER} 10000\n")
        spawn(["redis-server", conf, "--sentinel"])
        sentinel_ports.append(port)

    def current_master():
        out = cli(sentinel_ports[0], "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER).split()
        return int(out[1]) if len(out) == 2 else None

    assert wait_for(lambda: all(
        "num-slaves\n2" in cli(p, "SENTINEL", "MASTER", MASTER) for p in sentinel_ports)), "sentinels not ready"
    url = "redis+sentinel://" + ",".join(f"127.0.0.1:{p}" for p in sentinel_ports) + f"/{MASTER}"
    return redis, url, current_master, lambda port: ["-p", str(port or 1)]


def start_cluster(work, spawn):
    redis = {}

    def node(i):
        port = free_port()
        redis[port] = redis_node(work, f"node-{i}", port, spawn, [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
            "--cluster-port", str(free_port())])
        assert wait_for(lambda: cli(port, "PING") == "PONG"), "a cluster node did not start"
        return port

    ports = [node(i) for i in range(6)]
    out = subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                          "--cluster-replicas", "1", "--cluster-yes"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout
    live = [ports[0]]

    def nodes():
        for p in [*live, *redis]:
            if redis[p].poll() is None:
                text = cli(p, "CLUSTER", "NODES")
                if text:
                    return [line.split() for line in text.splitlines()]
        return []

    def current_master():
        for f in nodes():
            if "master" in f[2] and "fail" not in f[2]:
                for r in f[8:]:
                    a, _, b = r.partition("-")
                    if r[0].isdigit() and int(a) <= TAG_SLOT <= int(b or a):
                        return int(f[1].split("@")[0].rsplit(":", 1)[1])
        return None

    assert wait_for(lambda: all("cluster_state:ok" in cli(p, "CLUSTER", "INFO") for p in ports)), "cluster not ok"
    owner = current_master()
    owner_id = cli(owner, "CLUSTER", "MYID")
    extra = node(6)
    out = subprocess.run(["redis-cli", "--cluster", "add-node", f"127.0.0.1:{extra}", f"127.0.0.1:{owner}",
                          "--cluster-slave", "--cluster-master-id", owner_id], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout
    assert wait_for(lambda: "connected_slaves:2" in cli(owner, "INFO", "replication")), "second replica not linked"
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    # The issuer follows MOVED with -c, from any live node.
    return redis, url, current_master, lambda _port: ["-c", "-p", str(next(p for p in redis if redis[p].poll() is None))]


def main():
    work = tempfile.mkdtemp(prefix="tokengate-failover-")
    procs = []

    def spawn(args, **kw):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
        procs.append(p)
        return p

    try:
        if CLUSTER:
            redis, url, current_master, revoke_args = start_cluster(work, spawn)
        else:
            redis, url, current_master, revoke_args = start_sentinel(work, spawn)
        master_port = current_master()
        app = free_port()
        spawn([sys.executable, "-m", "http.server", str(app), "--bind", "127.0.0.1"], cwd=work)
        sidecars = []
        for i in range(SIDECARS):
            listen, admin = free_port(), free_port()
            config = os.path.join(work, f"sidecar-{i}.yaml")
            with open(config, "w") as f:
                f.write(config_text(listen, admin, free_port(), app, url))
            spawn([BIN, "--threads", "1", "run", "--config", config])
            sidecars.append((listen, admin))
        for _, admin in sidecars:
            assert wait_for(lambda: readyz(admin)), "a sidecar never got ready"
        conns = [http.client.HTTPConnection("127.0.0.1", listen, timeout=5) for listen, _ in sidecars]

        def refused_everywhere(tok, pending):
            still = set()
            for i in pending:
                conns[i].request("GET", "/", headers={"Authorization": f"Bearer {tok}"})
                r = conns[i].getresponse()
                r.read()
                if r.status != 401:
                    still.add(i)
            return still

        phases = {"before": [], "during": [], "after": []}
        failed = {"before": 0, "during": 0, "after": 0}
        n = 0
        killed = None
        current_after_kill = None
        phase = "before"
        while True:
            if phase == "before" and len(phases["before"]) == PER_PHASE:
                killed = time.perf_counter()
                redis[master_port].kill()
                phase = "during"
            if phase == "after" and len(phases["after"]) == PER_PHASE:
                break
            n += 1
            jti = f"bench-{n}"
            tok = token(jti)
            port = current_master() if phase != "before" else master_port
            out = subprocess.run(["redis-cli", *revoke_args(port), "EVAL", REVOKE, "2",
                                  "{tokengate}:revoked:jti", "{tokengate}:seq", "jti", jti,
                                  str(int(time.time()) + 3600), "tokengate:revocations"],
                                 capture_output=True, text=True, timeout=5)
            if not out.stdout.strip().isdigit():
                failed[phase] += 1
                time.sleep(INTERVAL)
                continue
            written = time.perf_counter()
            pending = set(range(SIDECARS))
            while pending and time.perf_counter() - written < 30:
                pending = refused_everywhere(tok, pending)
            phases[phase].append(time.perf_counter() - written)
            if phase == "during" and port != master_port:
                current_after_kill = time.perf_counter() - killed
                phase = "after"
            time.sleep(INTERVAL)

        setup = ("Cluster (3 masters, tag's master with 2 replicas, node-timeout 1000 ms)" if CLUSTER
                 else "Sentinel (master + 2 replicas, down-after 1000 ms)")
        print(f"{SIDECARS} sidecars, {setup}, one revocation every {INTERVAL * 1000:.0f} ms")
        print("| phase | revocations | not written | p50 | p99 | max |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, xs in phases.items():
            if xs:
                print(f"| {name} | {len(xs)} | {failed[name]} | {quantile(xs, 0.5):.2f} ms | {quantile(xs, 0.99):.2f} ms | {max(xs) * 1000:.2f} ms |")
        print(f"master killed -> a revocation through the new master refused on every sidecar: {current_after_kill:.2f} s")

        # Session refresh latency: through the sentinel URL, and direct to the new master.
        new_master = current_master()
        results = {}
        for label, rurl in [("cluster" if CLUSTER else "sentinel", url), ("direct", f"redis://127.0.0.1:{new_master}")]:
            listen, control = free_port(), free_port()
            config = os.path.join(work, f"refresh-{label}.yaml")
            with open(config, "w") as f:
                f.write(config_text(listen, free_port(), control, app, rurl))
            p = spawn([BIN, "--threads", "1", "run", "--config", config])
            assert wait_for(lambda: ready(control)), "the refresh sidecar did not start"
            ctl = http.client.HTTPConnection("127.0.0.1", control, timeout=5)
            ctl.request("POST", "/sessions", json.dumps({"sub": f"refresh-{label}"}), {"Content-Type": "application/json"})
            refresh = json.loads(ctl.getresponse().read())["refresh_token"]
            px = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
            times = []
            for _ in range(300):
                started = time.perf_counter()
                px.request("POST", "/.tokengate/refresh", f"grant_type=refresh_token&refresh_token={refresh}",
                           {"Content-Type": "application/x-www-form-urlencoded"})
                r = px.getresponse()
                body = json.loads(r.read())
                times.append(time.perf_counter() - started)
                refresh = body["refresh_token"]
            results[label] = times
            p.terminate()
        print("| refresh through | p50 | p99 |")
        print("|---|---:|---:|")
        for label, xs in results.items():
            print(f"| {label} | {quantile(xs, 0.5):.2f} ms | {quantile(xs, 0.99):.2f} ms |")
    finally:
        for p in reversed(procs):
            p.kill()
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

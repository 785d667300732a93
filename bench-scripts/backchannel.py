"""A logout at the identity provider, to every sidecar: the real
oidc-provider (tests/provider) sends its back-channel logout token to one of
three tokengate sidecars sharing a Redis; measured from the moment the
provider is asked to log the user out to the moment every sidecar refuses
the user's token (each polled over a kept-alive connection).

    python3 bench-scripts/backchannel.py [ROUNDS]   (TOKENGATE_BIN, default target/release/tokengate)
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TOKENGATE_BIN", os.path.join(ROOT, "target/release/tokengate"))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
SIDECARS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(url, status=200, limit=30):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == status:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} never answered {status}")


def main():
    work = tempfile.mkdtemp(prefix="tokengate-backchannel-")
    procs = []
    try:
        redis_port, op_port, app_port = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "http.server", str(app_port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work))
        sidecars = [(free_port(), free_port()) for _ in range(SIDECARS)]
        issuer = f"http://127.0.0.1:{op_port}"
        for i, (listen, admin) in enumerate(sidecars):
            config = os.path.join(work, f"sidecar-{i}.yaml")
            with open(config, "w") as f:
                f.write(f"""listen: "127.0.0.1:{listen}"
admin: {{ listen: "127.0.0.1:{admin}" }}
upstream: {{ url: "http://127.0.0.1:{app_port}" }}
auth:
  issuers:
    - issuer: "{issuer}"
      discovery: true
      audiences: ["urn:api"]
      backchannel_logout: {{ audiences: [rp] }}
routes:
  - prefix: /
revocation:
  backend: redis
  redis: {{ url: "redis://127.0.0.1:{redis_port}" }}
""")
            procs.append(subprocess.Popen([BIN, "run", "--config", config], stderr=subprocess.DEVNULL))
        receiver = f"http://127.0.0.1:{sidecars[0][0]}/.tokengate/backchannel-logout"
        procs.append(subprocess.Popen(
            ["node", os.path.join(ROOT, "tests/provider/provider.mjs"),
             json.dumps({"port": op_port, "backchannel_logout_uri": receiver})],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _, admin in sidecars:
            wait(f"http://127.0.0.1:{admin}/readyz")

        conns = [http.client.HTTPConnection("127.0.0.1", listen) for listen, _ in sidecars]
        op = http.client.HTTPConnection("127.0.0.1", op_port)

        def status(conn, token):
            conn.request("GET", "/", headers={"Authorization": f"Bearer {token}"})
            r = conn.getresponse()
            r.read()
            return r.status

        everywhere, delivered = [], []
        for n in range(ROUNDS):
            # A cut-off covers tokens issued in its second: the next round's
            # token must be issued in a later one.
            time.sleep(1.1)
            body = "grant_type=client_credentials&resource=urn:api:ES256&scope=read"
            op.request("POST", "/token", body, {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Basic YXBpLWNsaWVudDphcGktY2xpZW50LXNlY3JldC0wMTIzNDU2Nzg5YWJjZGVm",
            })
            r = op.getresponse()
            token = json.loads(r.read())["access_token"]
            assert all(status(c, token) == 200 for c in conns), "token refused before the logout"
            started = time.perf_counter()
            op.request("POST", f"/test/backchannel-logout?sub=api-client&sid=round-{n}")
            r = op.getresponse()
            r.read()
            assert r.status == 204, f"the provider did not deliver: {r.status}"
            delivered.append(time.perf_counter() - started)
            pending = set(range(SIDECARS))
            while pending:
                pending = {i for i in pending if status(conns[i], token) != 401}
            everywhere.append(time.perf_counter() - started)

        def ms(xs, q):
            return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) > 1 else xs[0] * 1000

        print(f"{ROUNDS} logouts, {SIDECARS} sidecars sharing one Redis")
        print(f"provider's POST answered 200:  p50 {ms(delivered, 50):.2f} ms  p90 {ms(delivered, 90):.2f} ms  max {max(delivered) * 1000:.2f} ms")
        print(f"token refused on every sidecar: p50 {ms(everywhere, 50):.2f} ms  p90 {ms(everywhere, 90):.2f} ms  max {max(everywhere) * 1000:.2f} ms")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()

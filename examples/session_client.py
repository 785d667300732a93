#!/usr/bin/env python3
"""The session flow of tokengate, step by step, with the standard library only.

    login -> call -> access token expires -> refresh -> call -> logout -> refused

"login" is the app's job: after checking the user's password it asks the
sidecar's control listener for a session. Everything else is what a client
(browser, mobile app, CLI) does against the proxy listener.

    python3 examples/session_client.py --proxy http://127.0.0.1:8080 \
        --control http://127.0.0.1:9091 --path /api/me

Exits 0 when every step answered as expected; the test suite runs it.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def request(method, url, body=None, headers=None):
    """(status, parsed JSON body or None) without raising on 4xx/5xx."""
    data = None
    headers = dict(headers or {})
    if isinstance(body, dict) and headers.get("Content-Type") == "application/json":
        data = json.dumps(body).encode()
    elif isinstance(body, dict):
        data = urllib.parse.urlencode(body).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


class Client:
    """Holds the token pair; refreshes once when the access token is refused."""

    def __init__(self, proxy, tokens):
        self.proxy = proxy.rstrip("/")
        self.tokens = tokens

    def call(self, path):
        headers = {"Authorization": "Bearer " + self.tokens["access_token"]}
        return request("GET", self.proxy + path, headers=headers)[0]

    def refresh(self):
        status, body = request(
            "POST",
            self.proxy + "/.tokengate/refresh",
            {"grant_type": "refresh_token", "refresh_token": self.tokens["refresh_token"]},
        )
        if status == 200:
            self.tokens = body  # rotation: the old refresh token is now spent
        return status

    def logout(self):
        headers = {"Authorization": "Bearer " + self.tokens["access_token"]}
        return request("POST", self.proxy + "/.tokengate/logout", headers=headers)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxy", default="http://127.0.0.1:8080")
    ap.add_argument("--control", default="http://127.0.0.1:9091")
    ap.add_argument("--path", default="/", help="a protected path of the app")
    ap.add_argument("--sub", default="alice")
    ap.add_argument("--control-secret", help="if the control listener has one")
    args = ap.parse_args()

    failures = []

    def step(name, got, want):
        ok = got == want
        print(f"{'ok ' if ok else 'BAD'} {name}: {got}" + ("" if ok else f" (expected {want})"))
        if not ok:
            failures.append(name)

    # 1. The app, having checked alice's password, opens a session.
    headers = {"Content-Type": "application/json"}
    if args.control_secret:
        headers["Authorization"] = "Bearer " + args.control_secret
    status, tokens = request(
        "POST", args.control.rstrip("/") + "/sessions", {"sub": args.sub, "claims": {}}, headers
    )
    step("login", status, 200)
    if status != 200:
        return 1
    client = Client(args.proxy, tokens)
    print(f"    access token valid {tokens['expires_in']}s, session {tokens['session_id']}")

    # 2. Calls go through with the access token.
    step("call", client.call(args.path), 200)

    # 3. The access token expires (minutes in production; the test uses 2s).
    time.sleep(tokens["expires_in"] + 1)
    step("call after expiry", client.call(args.path), 401)

    # 4. Refresh without asking the user again: a new pair.
    spent = client.tokens["refresh_token"]
    step("refresh", client.refresh(), 200)
    step("call with the new token", client.call(args.path), 200)

    # 5. Logout: this session's tokens are refused on every sidecar.
    step("logout", client.logout(), 204)
    step("call after logout", client.call(args.path), 401)
    step("refresh after logout", client.refresh(), 401)
    client.tokens["refresh_token"] = spent
    step("spent refresh token", client.refresh(), 401)

    print("all steps as expected" if not failures else f"failed: {', '.join(failures)}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())

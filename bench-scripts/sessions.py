#!/usr/bin/env python3
"""Latency of the session endpoints against a running tokengate: opens N
sessions on the control listener, then chains N refreshes (each spends the
previous refresh token), one request at a time over one keep-alive connection.
Prints p50/p99/max per operation. Used by bench-scripts/sessions.sh."""

import http.client
import json
import sys
import time
import urllib.parse


def timed(conn, method, path, body, headers):
    t = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return time.perf_counter() - t, resp.status, data


def summary(name, samples):
    samples = sorted(samples)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1000
    print(f"{name:8} n={len(samples):5}  p50 {pick(0.5):6.2f} ms  p99 {pick(0.99):6.2f} ms  max {samples[-1]*1000:6.2f} ms")


def main():
    proxy, control, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    c = http.client.HTTPConnection(control)
    p = http.client.HTTPConnection(proxy)
    opens, refreshes = [], []
    token = None
    for i in range(n):
        dt, status, data = timed(c, "POST", "/sessions", json.dumps({"sub": f"user{i % 100}"}),
                                 {"Content-Type": "application/json"})
        assert status == 200, data
        opens.append(dt)
        token = token or json.loads(data)["refresh_token"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for _ in range(n):
        body = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": token})
        dt, status, data = timed(p, "POST", "/.tokengate/refresh", body, form)
        assert status == 200, data
        refreshes.append(dt)
        token = json.loads(data)["refresh_token"]
    summary("open", opens)
    summary("refresh", refreshes)


if __name__ == "__main__":
    main()

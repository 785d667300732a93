#!/usr/bin/env bash
# Where a request's CPU goes: perf samples of tokengate (symbols kept, in
# target/prof) pinned to core 0 with one worker thread, on the embedded dev
# config (HS256, memory backend) in front of nginx returning 200, under
# wrk -t1 -c50 on core 1, one repeated valid token (CASE=token, default),
# rotating tokens with the cache off (CASE=nocache) or a public route
# (CASE=public). Prints the top self-time symbols and a per-area summary.
#   bash bench-scripts/profile.sh [seconds]
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-8}
CASE=${CASE:-token}
for t in nginx wrk perf taskset; do command -v $t >/dev/null || { echo "needs $t (apt-get install nginx-light wrk linux-perf util-linux)" >&2; exit 1; }; done
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  cargo build --release --locked -q --target-dir target/prof
BIN=target/prof/release/tokengate
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port); P=$(free_port); A=$(free_port)
cat > "$TMP/up.conf" <<NGX
worker_processes 1; daemon off; pid $TMP/up.pid; error_log stderr error;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } } }
NGX
taskset -c 1 nginx -c "$TMP/up.conf" -p "$TMP" & PIDS+=($!)
cp config/dev.yaml config/dev-hs256-secret.DEVELOPMENT-ONLY.txt "$TMP/"
sed -i "s/127.0.0.1:8080/127.0.0.1:$P/; s/127.0.0.1:9090/127.0.0.1:$A/; s/127.0.0.1:3000/127.0.0.1:$UP/" "$TMP/dev.yaml"
PATH_=/
case "$CASE" in
  nocache) sed -i 's/^  leeway: 30s/  leeway: 30s\n  verify_cache: { enabled: false }/' "$TMP/dev.yaml"; N=1000 ;;
  public) PATH_=/public/x; N=1 ;;
  *) N=1 ;;
esac
"$BIN" --config "$TMP/dev.yaml" token mint --sub bench --ttl 1h --count $N | sed 's/^/Bearer /' > "$TMP/tokens"
cat > "$TMP/t.lua" <<'LUA'
local t = {}
for l in io.lines(os.getenv("TOKENS_FILE")) do t[#t + 1] = l end
local i = 0
request = function() i = i % #t + 1; return wrk.format("GET", os.getenv("REQ_PATH"), {["Authorization"] = t[i]}) end
LUA
TOKENGATE_LOG=warn taskset -c 0 "$BIN" --threads 1 --config "$TMP/dev.yaml" & TG=$!; PIDS+=($TG)
for _ in $(seq 200); do curl -sf "127.0.0.1:$A/readyz" >/dev/null && break; sleep 0.02; done
TOKENS_FILE="$TMP/tokens" REQ_PATH=$PATH_ taskset -c 1 wrk -t1 -c50 -d$((SECS + 3))s -s "$TMP/t.lua" "http://127.0.0.1:$P$PATH_" > "$TMP/wrk.txt" &
sleep 1
perf record -q -F 1999 -g --call-graph dwarf,16384 -p "$TG" -o "$TMP/perf.data" -- sleep "$SECS" 2>/dev/null
[ -n "${KEEP:-}" ] && cp "$TMP/perf.data" "$KEEP"
sleep 3
grep -E "Requests/sec|Non-2xx" "$TMP/wrk.txt" || true
echo "== top self time (CASE=$CASE)"
perf report -i "$TMP/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | sed -E 's/ +-? +-? *$//' | cut -c1-150 | head -"${TOP:-40}"
echo "== by area (self time, %)"
perf report -i "$TMP/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | python3 -c '
import re, sys, collections
areas = [("kernel", r"\[k\]"), ("jwt/crypto", r"aws_lc|jsonwebtoken|ring|sha|hmac|bignum|ec_|p256"),
  ("json", r"serde_json|serde::"), ("cache", r"moka|crossbeam|quanta|tagptr"), ("hash", r"sip|Hasher|hash_one"),
  ("revocation", r"revocation"), ("metrics", r"prometheus|metrics::"), ("allocator", r"malloc|free|realloc|_int_|cfree|memcpy|memmove|memset"),
  ("hyper/http", r"hyper|http::|httparse|h2::"), ("tokio", r"tokio|mio"), ("tokengate other", r"tokengate")]
tot = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+(.*)", line)
    if not m: continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    for name, pat in areas:
        if re.search(pat, sym):
            tot[name] += pct; break
    else:
        tot["other (" + dso + ")" if "libc" in dso else "other"] += pct
for k, v in tot.most_common(): print(f"{v:6.1f}  {k}")'

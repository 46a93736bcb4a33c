#!/usr/bin/env bash
# Reverse proxy benchmark: onebox's [[web.proxy]] against nginx's proxy_pass (Debian), both in
# front of the same small upstream, in the same run.
#
#   tests/bench/proxy.sh          (after `cargo build --release`; `make bench` runs it)
#
# The upstream is a third server that is never the bottleneck: nginx, one worker, answering a
# fixed 100-byte body with `return 200` (no file, no log). The two proxies run pinned to CPU 1,
# the upstream and the load generator to CPU 0 (taskset). Like for like:
#   nginx   tuned as a careful operator proxies: 1 worker, an `upstream` block with `keepalive 64`
#           and `keepalive_requests 1000000`, proxy_http_version 1.1 with `Connection ""` (so
#           upstream connections are reused), X-Forwarded-For/-Proto/-Host and Host set as
#           onebox sets them, keepalive_requests 1000000 to clients, access_log off; and given
#           onebox's security response headers (add_header), so both send the same head;
#   onebox  as shipped, access log off, plain HTTP serving (no redirect), one [[web.proxy]]
#           entry (`keepalive = 64`).
# Measured, one after the other, on /up/small (proxied by both):
#   1. HTTP/1.1                 wrk -t1 -c50               requests/s
#   2. HTTP/2 + TLS             h2load -c50 -m10           requests/s
# each ROUNDS times, onebox and nginx one after the other (which goes first alternates), and
# prints each round, then the medians: rates, requests served per second of proxy CPU (user +
# system, from /proc), and the onebox/nginx ratios of both (the median of the rounds' ratios).
# Loopback only; everything stops by itself (trap + timeouts). On a shared 2-core box only
# ratios from the same run mean anything.
#
# With COUNT=N, instead: each proxy runs under valgrind's callgrind (nginx with master_process
# off, so that its one process is the worker) and the user-space instructions per proxied
# request are counted, deterministic where rates on a shared box are not: the counters zeroed
# after 200 requests to warm up, then N keep-alive requests (h2load --h1 -c10, then h2load -c10
# -m10 over HTTP/2 + TLS), then dumped; printed per request for both, and their ratio.
#
# Environment: DURATION (seconds per measurement, default 10), ROUNDS (default 3), BIN (onebox
# binary), COUNT (callgrind mode, requests counted), KEEP (a directory: callgrind mode keeps its
# dumps there).
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-target/release/onebox}
SERVER_CPU=1
CLIENT_CPU=0

COUNT=${COUNT:-}
for tool in wrk h2load nginx taskset curl python3 ${COUNT:+valgrind callgrind_control}; do
  command -v "$tool" >/dev/null || { echo "proxy.sh: $tool is missing (apt-get install wrk nghttp2-client nginx util-linux curl)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "proxy.sh: $BIN not built; run: cargo build --release" >&2; exit 2; }

tmp=$(mktemp -d /tmp/onebox-bench-proxy.XXXXXX)
chmod 755 "$tmp"   # nginx workers run as an unprivileged user
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_up() { # url
  for _ in $(seq 600); do
    curl -sk -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "proxy.sh: $1 did not come up" >&2; cat "$tmp"/*.log "$tmp"/*/logs/*.log >&2 2>/dev/null; exit 1
}

temp_paths() { # dir: nginx's temporary paths under it
  for kind in client_body proxy fastcgi uwsgi scgi; do
    echo "  ${kind}_temp_path $1/$kind;"
  done
}

# The upstream: 100 bytes from memory, on the client's CPU.
up=$(free_port)
mkdir -p "$tmp/upstream/logs"
body=$(python3 -c 'print("x" * 99)')
cat > "$tmp/upstream/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/upstream/nginx.pid;
error_log $tmp/upstream/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
$(temp_paths "$tmp/upstream")
  server {
    listen 127.0.0.1:$up backlog=4096;
    location / { default_type text/plain; return 200 "$body\n"; }
  }
}
EOF
taskset -c "$CLIENT_CPU" nginx -p "$tmp/upstream" -e "$tmp/upstream/logs/error.log" -c "$tmp/upstream/nginx.conf" &
pids+=($!)
wait_up "http://127.0.0.1:$up/up/small"

# onebox: plain HTTP serves (no redirect), HTTPS with the development certificate.
ob_http=$(free_port); ob_https=$(free_port)
mkdir -p "$tmp/site"
cat > "$tmp/onebox.toml" <<EOF
state_dir = "$tmp/state"
# Whoever runs the benchmark (root too, deliberately).
user = "$(id -un)"
[log]
level = "warn"
# Metrics on, as shipped (on a port of its own: nothing else is disturbed).
[metrics]
listen = "127.0.0.1:0"
[dns]
listen = ["127.0.0.1:0"]
[web]
http_listen = ["127.0.0.1:$ob_http"]
https_listen = ["127.0.0.1:$ob_https"]
site_dir = "$tmp/site"
redirect_to_https = false
canonical_host = "127.0.0.1"
aliases = []
access_log = false
max_connections = 4096
[[web.proxy]]
path = "/up/"
upstreams = ["http://127.0.0.1:$up"]
keepalive = 64
EOF
# A proxy on the server's CPU (with COUNT, under callgrind: one file per dump).
proxy() { # name command...
  local name=$1; shift
  if [ -n "$COUNT" ]; then
    exec taskset -c "$SERVER_CPU" valgrind -q --tool=callgrind --callgrind-out-file="$tmp/$name.callgrind" "$@"
  fi
  exec taskset -c "$SERVER_CPU" "$@"
}
proxy onebox "$BIN" serve --config "$tmp/onebox.toml" 2>"$tmp/onebox.log" &
pids+=($!)
onebox_pid=$!
wait_up "http://127.0.0.1:$ob_http/up/small"

# nginx as the proxy: one worker, the same certificate, upstream keep-alive.
ng_http=$(free_port); ng_https=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat > "$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
${COUNT:+master_process off;}
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
$(temp_paths "$tmp/nginx")
  upstream app {
    server 127.0.0.1:$up;
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  # onebox's headers on every response (web.content_security_policy, web.referrer_policy).
  add_header Content-Security-Policy "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'" always;
  add_header X-Content-Type-Options nosniff always;
  add_header Referrer-Policy strict-origin-when-cross-origin always;
  server {
    listen 127.0.0.1:$ng_http backlog=4096;
    listen 127.0.0.1:$ng_https ssl http2 backlog=4096;
    ssl_certificate $tmp/state/dev-ca/cert.pem;
    ssl_certificate_key $tmp/state/dev-ca/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /up/ {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Real-IP \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\"\$http_host\"";
    }
  }
}
EOF
proxy nginx nginx -p "$tmp/nginx" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
wait_up "http://127.0.0.1:$ng_http/up/small"

# Sanity: both answer the upstream's bytes.
for base in "http://127.0.0.1:$ob_http" "http://127.0.0.1:$ng_http" "https://127.0.0.1:$ob_https" "https://127.0.0.1:$ng_https"; do
  got=$(curl -sk "$base/up/small")
  [ "$got" = "$body" ] || { echo "proxy.sh: $base/up/small answered '$got'" >&2; exit 1; }
done
head_bytes() { curl -sk -o /dev/null -w '%{size_header}' "$@"; }
heads="response head bytes: HTTP/1.1 onebox $(head_bytes "http://127.0.0.1:$ob_http/up/small") nginx $(head_bytes "http://127.0.0.1:$ng_http/up/small")"

limit=$((DURATION + ${COUNT:+300+}30))
client() { timeout "$limit" taskset -c "$CLIENT_CPU" "$@"; }

# Each prints "<requests per second> <requests completed>".
wrk_rps() { # url
  client wrk -t1 -c50 -d"${DURATION}s" "$1" |
    awk '/requests in/ {n = $1} /^Requests\/sec:/ {r = $2} END {print r, n}'
}
h2_rps() { # url
  client h2load -c50 -m10 -D "$DURATION" "$1" |
    awk '/^finished in/ {gsub(",", "", $4); r = $4} /^requests:/ {n = $8} END {print r, n}'
}
server_cpu() { # pid -> user+system seconds so far, all threads
  awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"
}

if [ -n "$COUNT" ]; then
  # Instructions per request: zeroed after the warm-up, dumped after COUNT requests.
  count() { # pid url [h2load options]
    local pid=$1 url=$2; shift 2
    client h2load "$@" -c10 -n200 "$url" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    client h2load "$@" -c10 -n"$COUNT" "$url" | grep -q " $COUNT succeeded, 0 failed" ||
      { echo "proxy.sh: requests failed under callgrind" >&2; exit 1; }
    callgrind_control -d "$pid" >/dev/null 2>&1
    # The latest dump's total of instructions (Ir).
    local file
    file=$(ls -t "$tmp"/*.callgrind.* 2>/dev/null | head -1)
    # KEEP=dir keeps the dumps for callgrind_annotate.
    if [ -n "${KEEP:-}" ]; then cp "$file" "$KEEP/"; fi
    awk -v n="$COUNT" '/^(summary|totals):/ {print int($2 / n); exit}' "$file"
  }
  ob_pid=$(pgrep -f -n "callgrind-out-file=$tmp/onebox.callgrind")
  ng_pid=$(pgrep -f -n "callgrind-out-file=$tmp/nginx.callgrind")
  echo "user-space instructions per proxied request (callgrind, $COUNT requests after 200, h2load -c10)"
  for mode in h1 h2; do
    if [ $mode = h1 ]; then
      ob=$(count "$ob_pid" "http://127.0.0.1:$ob_http/up/small" --h1)
      ng=$(count "$ng_pid" "http://127.0.0.1:$ng_http/up/small" --h1)
      label="HTTP/1.1"
    else
      ob=$(count "$ob_pid" "https://127.0.0.1:$ob_https/up/small" -m10)
      ng=$(count "$ng_pid" "https://127.0.0.1:$ng_https/up/small" -m10)
      label="HTTP/2 + TLS"
    fi
    printf '%-14s onebox %8d   nginx %8d   nginx/onebox %.2fx\n' "$label" "$ob" "$ng" "$(python3 -c "print($ng / $ob)")"
  done
  exit 0
fi
nginx_worker=$(pgrep -P "$(cat "$tmp/nginx/nginx.pid")" | head -1)
report=()
# One measurement: "<rate> <requests> <proxy CPU seconds>" of one proxy.
one() { # pid command...
  local pid=$1; shift
  local c0 c1 rate n
  c0=$(server_cpu "$pid"); read -r rate n < <("$@"); c1=$(server_cpu "$pid")
  echo "$rate $n $(python3 -c 'import sys; print(max(float(sys.argv[2]) - float(sys.argv[1]), 0.01))' "$c0" "$c1")"
}
measure() { # label onebox-command... -- nginx-command...
  local label=$1; shift
  local ob_cmd=() ng_cmd=()
  while [ "$1" != "--" ]; do ob_cmd+=("$1"); shift; done; shift
  ng_cmd=("$@")
  DURATION=2 "${ob_cmd[@]}" >/dev/null; DURATION=2 "${ng_cmd[@]}" >/dev/null   # warm-up
  local rounds=() round ob ng
  for round in $(seq "$ROUNDS"); do
    # Alternate which goes first, so that a drift in the box's load favours neither.
    if [ $((round % 2)) = 1 ]; then
      ob=$(one "$onebox_pid" "${ob_cmd[@]}"); ng=$(one "$nginx_worker" "${ng_cmd[@]}")
    else
      ng=$(one "$nginx_worker" "${ng_cmd[@]}"); ob=$(one "$onebox_pid" "${ob_cmd[@]}")
    fi
    rounds+=("$ob $ng")
    echo "  $label, round $round: onebox $ob, nginx $ng (rate, requests, CPU s)" >&2
  done
  report+=("$(python3 -c '
import statistics, sys
label = sys.argv[1]
rows = [list(map(float, r.split())) for r in sys.argv[2:]]
med = statistics.median
ob = med(r[0] for r in rows)
ng = med(r[3] for r in rows)
ratio = med(r[0] / r[3] if r[3] else 0 for r in rows)
ob_eff = med(r[1] / r[2] for r in rows)  # requests per second of proxy CPU
ng_eff = med(r[4] / r[5] for r in rows)
eff = med((r[1] / r[2]) / (r[4] / r[5]) if r[4] else 0 for r in rows)
print(f"{label:32} {ob:10.0f} {ng:10.0f} {ratio:6.2f}x"
      f"   {ob_eff:10.0f} {ng_eff:10.0f} {eff:6.2f}x")
' "$label" "${rounds[@]}")")
}

echo "onebox $("$BIN" --version | awk '{print $2}') vs $(nginx -v 2>&1 | sed 's/.*: //') as reverse proxies, ${DURATION}s per measurement, $ROUNDS rounds, proxies on CPU $SERVER_CPU, upstream and clients on CPU $CLIENT_CPU; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$heads"
measure "proxied 100 B, HTTP/1.1 (req/s)" \
  wrk_rps "http://127.0.0.1:$ob_http/up/small" -- wrk_rps "http://127.0.0.1:$ng_http/up/small"
measure "proxied 100 B, HTTP/2+TLS (req/s)" \
  h2_rps "https://127.0.0.1:$ob_https/up/small" -- h2_rps "https://127.0.0.1:$ng_https/up/small"

printf '\n%-32s %10s %10s %7s   %10s %10s %7s\n' "" "onebox" "nginx" "ratio" "onebox" "nginx" "ratio"
printf '%-32s %29s   %29s\n' "medians of $ROUNDS rounds" "rate" "requests per proxy CPU-second"
printf '%s\n' "${report[@]}"

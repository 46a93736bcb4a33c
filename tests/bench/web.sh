#!/usr/bin/env bash
# Web benchmark: onebox against nginx (Debian) serving the same site, in the same run.
#
#   tests/bench/web.sh            (after `cargo build --release`; `make bench` runs it)
#
# Each server runs pinned to CPU 1 and the load generator to CPU 0 (taskset). Like for like:
#   nginx   tuned as production nginx is: 1 worker, sendfile, tcp_nopush, open_file_cache (no
#           stat per request), keepalive_requests 1000000 (HTTP/2 too), ssl_session_cache,
#           access_log off; given onebox's response headers (add_header: CSP, nosniff,
#           Referrer-Policy, Cache-Control per type, Vary for compressible types, HSTS over TLS;
#           charset utf-8), so both send the same head, and onebox's cipher suites in onebox's
#           order (the server's), so both negotiate the same; its own prefix and config in a
#           temporary directory;
#   onebox  as shipped (metrics on, one async worker: the CPU it is pinned to), but access log
#           off and plain HTTP serving the site (no redirect).
# Both use the same certificate (onebox's development CA issues it); the script prints both
# response heads' sizes and the TLS version and cipher each negotiates. Measured, one after
# the other, each RUNS times with the two servers alternating (medians reported):
#   1. a 2 KB page over HTTP/1.1      wrk -t1 -c50                      requests/s
#   2. a 1 MiB file over HTTP/1.1     wrk -t1 -c50                      GB/s
#   3. a 2 KB page over HTTP/2 + TLS  h2load -c50 -m10                  requests/s
#   4. new TLS handshakes             h2load --h1 -c50, Connection: close,
#                                     one request per connection        handshakes/s
# and prints the rates, the requests served per second of server CPU (user + system, read from
# /proc), and onebox/nginx ratios of both (the median of each round's ratio). Loopback only;
# everything stops by itself (trap + timeouts). On a shared 2-core box only ratios from the
# same run mean anything, and on a loaded one the CPU-second figures more than the rates.
#
# With COUNT=N, instead: each server runs under valgrind's callgrind (nginx with master_process
# off, so that its one process is the worker) and the user-space instructions per request of
# the 2 KB page over HTTP/1.1 are counted, deterministic where rates on a shared box are not:
# the counters zeroed after 2000 requests to warm up, then N keep-alive requests (h2load --h1
# -c50 -m1), then dumped; printed per request for both, and their ratio.
#
# Environment: DURATION (seconds per measurement, default 10), RUNS (rounds, default 3), BIN
# (onebox binary), HANDSHAKES (the handshake rate the fixed count of step 4 assumes, 1000/s),
# COUNT (callgrind mode, requests counted), KEEP (a directory: callgrind mode keeps its dumps
# there).
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
BIN=${BIN:-target/release/onebox}
SERVER_CPU=1
CLIENT_CPU=0

COUNT=${COUNT:-}
for tool in wrk h2load nginx taskset curl python3 ${COUNT:+valgrind callgrind_control}; do
  command -v "$tool" >/dev/null || { echo "web.sh: $tool is missing (apt-get install wrk nghttp2-client nginx util-linux curl)" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "web.sh: $BIN not built; run: cargo build --release" >&2; exit 2; }

tmp=$(mktemp -d /tmp/onebox-bench.XXXXXX)
chmod 755 "$tmp"   # nginx workers run as an unprivileged user
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The same site for both, plus the two benchmark files.
cp -r site "$tmp/site"
python3 - "$tmp/site" <<'EOF'
import os, sys
site = sys.argv[1]
filler = "<p>onebox benchmark page: a small HTML document of exactly two kilobytes.</p>\n"
head = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>2 KB</title></head><body>\n"
tail = "</body></html>\n"
body = filler * ((2048 - len(head) - len(tail)) // len(filler) + 1)
page = (head + body)[: 2048 - len(tail)] + tail
assert len(page.encode()) == 2048
open(os.path.join(site, "page2k.html"), "w").write(page)
open(os.path.join(site, "big.bin"), "wb").write(os.urandom(1 << 20))
EOF

# onebox: plain HTTP serves (no redirect), HTTPS with the development certificate.
ob_http=$(free_port); ob_https=$(free_port)
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
EOF
# A server on the server's CPU (with COUNT, under callgrind: one file per dump).
server() { # name command...
  local name=$1; shift
  if [ -n "$COUNT" ]; then
    exec taskset -c "$SERVER_CPU" valgrind -q --tool=callgrind --callgrind-out-file="$tmp/$name.callgrind" "$@"
  fi
  exec taskset -c "$SERVER_CPU" "$@"
}
server onebox "$BIN" serve --config "$tmp/onebox.toml" 2>"$tmp/onebox.log" &
pids+=($!)
onebox_pid=$!

wait_up() { # url
  for _ in $(seq 600); do
    curl -sk -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "web.sh: $1 did not come up" >&2; cat "$tmp"/*.log >&2; exit 1
}
wait_up "http://127.0.0.1:$ob_http/healthz"

# nginx: one worker, the same files and certificate.
ng_http=$(free_port); ng_https=$(free_port)
mkdir -p "$tmp/nginx/logs"
cat > "$tmp/nginx/nginx.conf" <<EOF
${COUNT:+master_process off;}
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  charset utf-8;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  open_file_cache max=10000 inactive=60s;
  open_file_cache_valid 60s;
  open_file_cache_errors on;
  # onebox's headers (its defaults: web.content_security_policy, web.referrer_policy,
  # web.cache_control_html, web.cache_control, web.hsts; Vary where it would compress).
  map \$sent_http_content_type \$onebox_cache_control {
    ~^text/html "no-cache";
    default "public, max-age=3600";
  }
  map \$sent_http_content_type \$onebox_vary {
    ~^(text/|application/(json|xml|javascript)|image/svg) "accept-encoding";
    default "";
  }
  map \$https \$onebox_hsts {
    on "max-age=31536000";
    default "";
  }
  add_header Content-Security-Policy "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'" always;
  add_header X-Content-Type-Options nosniff always;
  add_header Referrer-Policy strict-origin-when-cross-origin always;
  add_header Cache-Control \$onebox_cache_control;
  add_header Vary \$onebox_vary;
  add_header Strict-Transport-Security \$onebox_hsts always;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$ng_http;
    listen 127.0.0.1:$ng_https ssl http2;
    ssl_certificate $tmp/state/dev-ca/cert.pem;
    ssl_certificate_key $tmp/state/dev-ca/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    # onebox's cipher order (src/ops/certs.rs), the server's preference as in onebox.
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    root $tmp/site;
  }
}
EOF
server nginx nginx -p "$tmp/nginx" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx.conf" &
pids+=($!)
wait_up "http://127.0.0.1:$ng_http/page2k.html"

# Sanity: both serve the same bytes, under heads of about the same size.
for f in page2k.html big.bin; do
  a=$(curl -s "http://127.0.0.1:$ob_http/$f" | md5sum); b=$(curl -s "http://127.0.0.1:$ng_http/$f" | md5sum)
  [ "$a" = "$b" ] || { echo "web.sh: onebox and nginx serve different $f" >&2; exit 1; }
done
head_bytes() { curl -sk -o /dev/null -w '%{size_header}' "$@"; }
heads="response head bytes, 2 KB page: HTTP/1.1 onebox $(head_bytes "http://127.0.0.1:$ob_http/page2k.html")"
heads+=" nginx $(head_bytes "http://127.0.0.1:$ng_http/page2k.html")"
heads+="; HTTPS onebox $(head_bytes "https://127.0.0.1:$ob_https/page2k.html") nginx $(head_bytes "https://127.0.0.1:$ng_https/page2k.html")"
cipher() { # port: what an HTTP/2 client negotiates
  openssl s_client -connect "127.0.0.1:$1" -alpn h2 </dev/null 2>/dev/null | awk '/^New, / {print $2, $NF}'
}
heads+="; TLS onebox $(cipher "$ob_https") nginx $(cipher "$ng_https")"

limit=$((DURATION + ${COUNT:+300+}30))
client() { timeout "$limit" taskset -c "$CLIENT_CPU" "$@"; }

# Each prints "<requests per second> <requests completed>".
wrk_rps() { # url
  client wrk -t1 -c50 -d"${DURATION}s" "$1" |
    awk '/requests in/ {n = $1} /^Requests\/sec:/ {r = $2} END {print r, n}'
}
h2load_rps() { # h2load arguments...
  client h2load "$@" |
    awk '/^finished in/ {gsub(",", "", $4); r = $4} /^requests:/ {n = $8} END {print r, n}'
}
h2_rps() { # url
  h2load_rps -c50 -m10 -D "$DURATION" "$1"
}
handshakes() { # url: new connections, one request each
  # A fixed count (h2load does not reconnect in -D mode): about DURATION seconds at
  # HANDSHAKES per second (1000 by default, so that a loaded box finishes within the timeout).
  h2load_rps --h1 -c50 -m1 -n $((DURATION * ${HANDSHAKES:-1000})) -H 'Connection: close' "$1"
}
server_cpu() { # pid -> user+system seconds so far, all threads
  awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"
}

if [ -n "$COUNT" ]; then
  # Instructions per request: zeroed after the warm-up, dumped after COUNT requests.
  count() { # pid url
    local pid=$1 url=$2
    client h2load --h1 -c50 -m1 -n2000 "$url" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    client h2load --h1 -c50 -m1 -n"$COUNT" "$url" | grep -q " $COUNT succeeded, 0 failed" ||
      { echo "web.sh: requests failed under callgrind" >&2; exit 1; }
    callgrind_control -d "$pid" >/dev/null 2>&1
    # The latest dump's total of instructions (Ir).
    local file
    file=$(ls -t "$tmp"/*.callgrind.* 2>/dev/null | head -1)
    if [ -n "${KEEP:-}" ]; then cp "$file" "$KEEP/"; fi
    awk -v n="$COUNT" '/^(summary|totals):/ {print int($2 / n); exit}' "$file"
  }
  ob_pid=$(pgrep -f -n "callgrind-out-file=$tmp/onebox.callgrind")
  ng_pid=$(pgrep -f -n "callgrind-out-file=$tmp/nginx.callgrind")
  echo "user-space instructions per request, 2 KB page over HTTP/1.1 (callgrind, $COUNT requests after 2000, h2load --h1 -c50 -m1)"
  ob=$(count "$ob_pid" "http://127.0.0.1:$ob_http/page2k.html")
  ng=$(count "$ng_pid" "http://127.0.0.1:$ng_http/page2k.html")
  printf 'onebox %8d   nginx %8d   nginx/onebox %.2fx\n' "$ob" "$ng" "$(python3 -c "print($ng / $ob)")"
  exit 0
fi
nginx_worker=$(pgrep -P "$(cat "$tmp/nginx/nginx.pid")" | head -1)
report=()
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
run_one() { # pid command... -> "<rate> <requests per server CPU-second>"
  local pid=$1 c0 c1 rate n; shift
  c0=$(server_cpu "$pid"); read -r rate n < <("$@" || true); c1=$(server_cpu "$pid")
  # A client that timed out printed nothing: 0 (and the ratios say so).
  python3 -c 'import sys; r, n, c0, c1 = map(float, sys.argv[1:]); print(r, n / max(c1 - c0, 0.01))' \
    "${rate:-0}" "${n:-0}" "$c0" "$c1"
}
measure() { # label unit onebox-command... -- nginx-command...
  local label=$1 unit=$2; shift 2
  local ob_cmd=() ng_cmd=()
  while [ "$1" != "--" ]; do ob_cmd+=("$1"); shift; done; shift
  ng_cmd=("$@")
  DURATION=2 "${ob_cmd[@]}" >/dev/null || true; DURATION=2 "${ng_cmd[@]}" >/dev/null || true   # warm-up
  local round ob ob_eff ng ng_eff obs=() ngs=() ob_effs=() ng_effs=() ratios=() eff_ratios=()
  for ((round = 1; round <= RUNS; round++)); do
    # The two servers alternate which goes first, so that a load drifting over the round
    # does not always favour the same one.
    if ((round % 2)); then
      read -r ob ob_eff < <(run_one "$onebox_pid" "${ob_cmd[@]}")
      read -r ng ng_eff < <(run_one "$nginx_worker" "${ng_cmd[@]}")
    else
      read -r ng ng_eff < <(run_one "$nginx_worker" "${ng_cmd[@]}")
      read -r ob ob_eff < <(run_one "$onebox_pid" "${ob_cmd[@]}")
    fi
    obs+=("$ob"); ngs+=("$ng"); ob_effs+=("$ob_eff"); ng_effs+=("$ng_eff")
    ratios+=("$(python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(a / b if b else 0)' "$ob" "$ng")")
    eff_ratios+=("$(python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(a / b if b else 0)' "$ob_eff" "$ng_eff")")
    printf '  %s, round %d/%d: requests/s onebox %.0f nginx %.0f; per server CPU-second onebox %.0f nginx %.0f\n' \
      "$label" "$round" "$RUNS" "$ob" "$ng" "$ob_eff" "$ng_eff" >&2
  done
  report+=("$(python3 -c '
import sys
label, unit = sys.argv[1:3]
ob, ng, ratio, ob_eff, ng_eff, eff_ratio = map(float, sys.argv[3:])
scale = 1048576 / 1e9 if unit == "GB/s" else 1
print(f"{label + chr(32) + chr(40) + unit + chr(41):32} {ob * scale:10.2f} {ng * scale:10.2f} {ratio:6.2f}x"
      f"   {ob_eff:10.0f} {ng_eff:10.0f} {eff_ratio:6.2f}x")
' "$label" "$unit" "$(median "${obs[@]}")" "$(median "${ngs[@]}")" "$(median "${ratios[@]}")" \
    "$(median "${ob_effs[@]}")" "$(median "${ng_effs[@]}")" "$(median "${eff_ratios[@]}")")")
}

echo "onebox $("$BIN" --version | awk '{print $2}') vs $(nginx -v 2>&1 | sed 's/.*: //'), $RUNS rounds of ${DURATION}s per measurement, servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU"
echo "$heads"
measure "2 KB page, HTTP/1.1" "req/s" \
  wrk_rps "http://127.0.0.1:$ob_http/page2k.html" -- wrk_rps "http://127.0.0.1:$ng_http/page2k.html"
measure "1 MiB file, HTTP/1.1" "GB/s" \
  wrk_rps "http://127.0.0.1:$ob_http/big.bin" -- wrk_rps "http://127.0.0.1:$ng_http/big.bin"
measure "2 KB page, HTTP/2 + TLS" "req/s" \
  h2_rps "https://127.0.0.1:$ob_https/page2k.html" -- h2_rps "https://127.0.0.1:$ng_https/page2k.html"
measure "TLS handshakes" "conn/s" \
  handshakes "https://127.0.0.1:$ob_https/page2k.html" -- handshakes "https://127.0.0.1:$ng_https/page2k.html"

printf '\n%-32s %10s %10s %7s   %10s %10s %7s\n' "" "onebox" "nginx" "ratio" "onebox" "nginx" "ratio"
printf '%-32s %29s   %29s\n' "measurement (medians of $RUNS)" "rate" "requests per server CPU-second"
printf '%s\n' "${report[@]}"

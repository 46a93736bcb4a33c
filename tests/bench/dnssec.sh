#!/usr/bin/env bash
# DNSSEC benchmark (issue 14): queries with DO=1 (signatures and denial proofs in the answer)
# against DO=0, on onebox signing the zone itself and on NSD serving the same zone signed by
# ldns-signzone (NSEC, ECDSA P-256 as onebox's default), in the same run
# (`make bench-dnssec`).
#
# Both servers serve a generated foobar.com zone (SOA, NS, apex A and MX, www CNAME,
# host1..host1000), each pinned to the same core (SERVER_CPU); dnsperf, on the other
# (CLIENT_CPU), runs the same query mix (www CNAME, apex A and MX, hosts, nonexistent names)
# without and with the DO bit (dnsperf -D), UDP, for DURATION seconds each. One round measures
# onebox DO=0, onebox DO=1, NSD DO=0, NSD DO=1 back to back; RUNS rounds are run and every
# figure printed is the median over the rounds (a ratio: the median of each round's ratio, so
# that load from elsewhere, which drifts between rounds, weighs on both sides of it alike).
# Then each server's CPU time per 100 000 queries at a fixed offered rate (RATE), DO=0 and
# DO=1: what a rate measured on a loaded box cannot say, the cost of a query itself.
#
# The target: onebox's DO=1 rate at least 0.8x its DO=0 rate, signatures precomputed rather
# than made per query.
#
# Knobs (environment): DURATION (5), RUNS (5), CLIENTS (20), RATE (20000; 0 skips the fixed
# rate runs), SERVER_CPU (1), CLIENT_CPU (0).
# Needs: a release build (make release), nsd, ldns-keygen and ldns-signzone (ldnsutils),
# dnsperf, dig, taskset, pgrep. Loopback only; everything stops by itself.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-5}
RUNS=${RUNS:-5}
CLIENTS=${CLIENTS:-20}
RATE=${RATE:-20000}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
HOSTS=1000
ONEBOX=$ROOT/target/release/onebox

NAME=bench-dnssec
# shellcheck source=tests/bench/common.sh
source "$ROOT/tests/bench/common.sh"
needs nsd ldns-keygen ldns-signzone dnsperf dig taskset ss bc pgrep
[[ -x $ONEBOX ]] || die "$ONEBOX not found: make release"

mkdir -p "$WORK/zones" "$WORK/nsd"
ZONE=$WORK/zones/foobar.com.zone
{
    cat <<'ZONE'
$ORIGIN foobar.com.
$TTL 3600
@       IN SOA  ns1.foobar.com. hostmaster.foobar.com. ( 2026120501 3600 900 1209600 300 )
        IN NS   ns1.foobar.com.
        IN A    192.0.2.1
        IN MX   10 mail.foobar.com.
ns1     IN A    192.0.2.1
mail    IN A    192.0.2.1
www     IN CNAME @
ZONE
    # 198.18.0.0/15 is the benchmarking range (RFC 2544): data only, never contacted.
    for ((i = 1; i <= HOSTS; i++)); do
        echo "host$i IN A 198.18.$((i / 256)).$((i % 256))"
    done
} >"$ZONE"

# 10 000 queries looped by dnsperf: 20% www A, 10% apex A, 10% apex MX, 45% hosts, 15%
# nonexistent names (NXDOMAIN: with DO=1, two NSEC records and their signatures).
RANDOM=42
for ((i = 0; i < 10000; i++)); do
    r=$((RANDOM % 100))
    if ((r < 20)); then
        echo "www.foobar.com A"
    elif ((r < 30)); then
        echo "foobar.com A"
    elif ((r < 40)); then
        echo "foobar.com MX"
    elif ((r < 85)); then
        echo "host$((RANDOM % HOSTS + 1)).foobar.com A"
    else
        echo "nx$RANDOM.foobar.com A"
    fi
done >"$WORK/queries"

# wait_answer PORT: until the server answers the zone's DNSKEY (signed and loaded).
wait_answer() {
    for ((i = 0; i < 600; i++)); do
        [[ -n $(dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 foobar.com DNSKEY 2>/dev/null) ]] && return
        sleep 0.1
    done
    die "no DNSKEY answered on port $1"
}

# rate PORT [dnsperf options]: queries per second.
rate() {
    local port=$1
    shift
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" \
        -c "$CLIENTS" -l "$DURATION" "$@" 2>&1 | awk '/Queries per second:/ {printf "%d\n", $4}'
}

# cpu_ticks PID: the user and system time so far of the process and of every process below
# it (NSD answers from a child of a child), in clock ticks.
cpu_ticks() {
    local pids=$1 all="" pid total=0 stat
    while [[ -n $pids ]]; do
        all+=" $pids"
        pids=$(for pid in $pids; do pgrep -P "$pid"; done)
    done
    for pid in $all; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) } # fields from 3 on; the command name may hold spaces
        total=$((total + $(awk '{print $12 + $13}' <<<"$stat")))
    done
    echo "$total"
}

# cpu PORT PID [dnsperf options]: the server's CPU seconds per 100 000 queries answered at
# the offered rate RATE.
cpu() {
    local port=$1 pid=$2 before after done
    shift 2
    before=$(cpu_ticks "$pid")
    done=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" \
        -c "$CLIENTS" -l "$DURATION" -Q "$RATE" "$@" 2>&1 | awk '/Queries completed:/ {print $3}')
    after=$(cpu_ticks "$pid")
    awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$done" \
        'BEGIN {printf "%.3f\n", (n > 0 ? t / hz / n * 100000 : 0)}'
}

median() { # median of the arguments
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# onebox, signing the zone itself.
port=$(free_port)
cat >"$WORK/onebox.toml" <<EOF
state_dir = "$WORK/state"
user = "$(id -un)"
[log]
level = "warn"
[dns]
listen = ["127.0.0.1:$port"]
udp_workers = 1
zones_dir = "$WORK/zones"
query_log = false
[dns.dnssec]
zones = ["foobar.com"]
[dns.rate_limit]
responses_per_second = 0
[web]
http_listen = []
https_listen = []
site_dir = "$ROOT/site"
[app]
enabled = false
[metrics]
listen = ""
EOF
taskset -c "$SERVER_CPU" "$ONEBOX" --config "$WORK/onebox.toml" serve >"$WORK/onebox.log" 2>&1 </dev/null &
ob_pid=$!
PIDS+=("$ob_pid")
wait_answer "$port"

# NSD, serving the same zone signed by ldns-signzone with a combined ECDSA P-256 key.
(cd "$WORK/nsd" && ldns-keygen -a ECDSAP256SHA256 -k foobar.com >key.name)
(cd "$WORK/nsd" && ldns-signzone -f "$WORK/nsd/foobar.com.signed" "$ZONE" "$(cat key.name)")
nport=$(free_port)
nsd_conf "$nport" "$WORK/nsd/foobar.com.signed"
taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" >>"$WORK/nsd/log" 2>&1 </dev/null &
nsd_pid=$!
PIDS+=("$nsd_pid")
wait_answer "$nport"

# The rounds: both servers loaded in turn, the DO bit alternating, one figure per line.
declare -a ob_do0 ob_do1 nsd_do0 nsd_do1 ob_ratio nsd_ratio
for ((round = 1; round <= RUNS; round++)); do
    echo "round $round/$RUNS..." >&2
    a=$(rate "$port")
    b=$(rate "$port" -D)
    c=$(rate "$nport")
    d=$(rate "$nport" -D)
    echo "  onebox DO=0 $a DO=1 $b ($(ratio "$b" "$a")x); NSD DO=0 $c DO=1 $d ($(ratio "$d" "$c")x)" >&2
    ob_do0+=("$a") ob_do1+=("$b") nsd_do0+=("$c") nsd_do1+=("$d")
    ob_ratio+=("$(ratio "$b" "$a")") nsd_ratio+=("$(ratio "$d" "$c")")
done
if ((RATE > 0)); then
    echo "CPU per query at $RATE queries/s..." >&2
    ob_cpu0=$(cpu "$port" "$ob_pid")
    ob_cpu1=$(cpu "$port" "$ob_pid" -D)
    nsd_cpu0=$(cpu "$nport" "$nsd_pid")
    nsd_cpu1=$(cpu "$nport" "$nsd_pid" -D)
fi

m() { median "$@"; }
echo
echo "DNSSEC: a signed zone of $HOSTS hosts, UDP, dnsperf -c $CLIENTS on CPU $CLIENT_CPU, servers on CPU $SERVER_CPU"
echo "medians of $RUNS rounds of ${DURATION}s per figure"
printf '%-8s %12s %12s %14s\n' "" "DO=0 q/s" "DO=1 q/s" "DO=1 / DO=0"
printf '%-8s %12s %12s %13sx\n' onebox "$(m "${ob_do0[@]}")" "$(m "${ob_do1[@]}")" "$(m "${ob_ratio[@]}")"
printf '%-8s %12s %12s %13sx\n' NSD "$(m "${nsd_do0[@]}")" "$(m "${nsd_do1[@]}")" "$(m "${nsd_ratio[@]}")"
printf 'onebox / NSD: DO=0 %sx, DO=1 %sx\n' \
    "$(ratio "$(m "${ob_do0[@]}")" "$(m "${nsd_do0[@]}")")" "$(ratio "$(m "${ob_do1[@]}")" "$(m "${nsd_do1[@]}")")"
if ((RATE > 0)); then
    echo "CPU seconds per 100 000 queries at $RATE queries/s (one run of ${DURATION}s each):"
    printf '%-8s %12s %12s %14s\n' "" "DO=0" "DO=1" "DO=1 / DO=0"
    printf '%-8s %12s %12s %13sx\n' onebox "$ob_cpu0" "$ob_cpu1" "$(ratio "$ob_cpu1" "$ob_cpu0")"
    printf '%-8s %12s %12s %13sx\n' NSD "$nsd_cpu0" "$nsd_cpu1" "$(ratio "$nsd_cpu1" "$nsd_cpu0")"
fi

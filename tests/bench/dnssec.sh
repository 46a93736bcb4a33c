#!/usr/bin/env bash
# DNSSEC benchmark (issue 14): queries with DO=1 (signatures and denial proofs in the answer)
# against DO=0, on onebox signing the zone itself and on NSD serving the same zone signed by
# ldns-signzone (NSEC, ECDSA P-256 as onebox's default), in the same run
# (`make bench-dnssec`).
#
# Both servers serve a generated foobar.com zone (SOA, NS, apex A and MX, www CNAME,
# host1..host1000), pinned to one core (SERVER_CPU); dnsperf, on the other (CLIENT_CPU), runs
# the same query mix (www CNAME, apex A and MX, hosts, nonexistent names) without and with the
# DO bit (dnsperf -D), UDP, for DURATION seconds each. The target: onebox's DO=1 rate at least
# 0.8x its DO=0 rate, signatures precomputed rather than made per query.
#
# Knobs (environment): DURATION (10), CLIENTS (20), SERVER_CPU (1), CLIENT_CPU (0).
# Needs: a release build (make release), nsd, ldns-keygen and ldns-signzone (ldnsutils),
# dnsperf, dig, taskset. Loopback only; everything stops by itself.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-20}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
HOSTS=1000
ONEBOX=$ROOT/target/release/onebox

NAME=bench-dnssec
# shellcheck source=tests/bench/common.sh
source "$ROOT/tests/bench/common.sh"
needs nsd ldns-keygen ldns-signzone dnsperf dig taskset ss bc
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
PIDS+=($!)
wait_answer "$port"
ob_do0=$(rate "$port")
ob_do1=$(rate "$port" -D)

# NSD, serving the same zone signed by ldns-signzone with a combined ECDSA P-256 key.
(cd "$WORK/nsd" && ldns-keygen -a ECDSAP256SHA256 -k foobar.com >key.name)
(cd "$WORK/nsd" && ldns-signzone -f "$WORK/nsd/foobar.com.signed" "$ZONE" "$(cat key.name)")
nport=$(free_port)
nsd_conf "$nport" "$WORK/nsd/foobar.com.signed"
taskset -c "$SERVER_CPU" nsd -d -c "$WORK/nsd/nsd.conf" >>"$WORK/nsd/log" 2>&1 </dev/null &
PIDS+=($!)
wait_answer "$nport"
nsd_do0=$(rate "$nport")
nsd_do1=$(rate "$nport" -D)

echo
echo "DNSSEC: a signed zone of $HOSTS hosts, UDP, dnsperf -c $CLIENTS, ${DURATION}s each, servers on CPU $SERVER_CPU"
printf '%-8s %12s %12s %14s\n' "" "DO=0 q/s" "DO=1 q/s" "DO=1 / DO=0"
printf '%-8s %12s %12s %13sx\n' onebox "$ob_do0" "$ob_do1" "$(ratio "$ob_do1" "$ob_do0")"
printf '%-8s %12s %12s %13sx\n' NSD "$nsd_do0" "$nsd_do1" "$(ratio "$nsd_do1" "$nsd_do0")"
printf 'onebox / NSD: DO=0 %sx, DO=1 %sx\n' "$(ratio "$ob_do0" "$nsd_do0")" "$(ratio "$ob_do1" "$nsd_do1")"

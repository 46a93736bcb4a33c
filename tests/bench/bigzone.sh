#!/usr/bin/env bash
# Big zones (issue 11): a zone of ZONE_RECORDS A records (1 000 000 by default), loaded by
# onebox and by NSD from the same file, in the same run (`make bench-bigzone`).
#
# Figures, each server's own way of reading a zone:
#   check    `onebox check` and `nsd-checkzone`: wall time and peak resident memory
#            (GNU time's %e and %M) of reading and checking the file, nothing served;
#   serve    the server started on the zone: seconds until it answers the zone's SOA, then its
#            resident memory (VmRSS; for NSD, all its processes) and its peak (VmHWM);
#   reload   onebox only: one record and the serial changed, SIGHUP, seconds until the new
#            serial is served, and the peak (VmHWM) over the whole run, reload included.
# Then the ratios onebox / NSD: the target is at most 2x NSD's time and memory.
#
# Knobs (environment): ZONE_RECORDS (1000000).
# Needs: cargo, nsd, nsd-checkzone, dig, GNU time (/usr/bin/time). Loopback only.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ZONE_RECORDS=${ZONE_RECORDS:-1000000}
ONEBOX=$ROOT/target/release/onebox

NAME=bench-bigzone
# shellcheck source=tests/bench/common.sh
source "$ROOT/tests/bench/common.sh"
needs nsd nsd-checkzone dig ss bc
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (Debian package time)"
[[ -x $ONEBOX ]] || die "$ONEBOX not found: make release"

# write_zone FILE SERIAL
write_zone() {
    local file=$1 serial=$2
    {
        printf '$ORIGIN foobar.com.\n$TTL 3600\n'
        printf '@ IN SOA ns1.foobar.com. hostmaster.foobar.com. ( %s 3600 900 1209600 300 )\n' "$serial"
        printf '  IN NS ns1.foobar.com.\nns1 IN A 192.0.2.1\n'
        # 198.18.0.0/15 is the benchmarking range (RFC 2544): data only, never contacted.
        awk -v n="$ZONE_RECORDS" 'BEGIN {
            for (i = 1; i <= n; i++)
                printf "host%d IN A 198.%d.%d.%d\n", i, 18 + int(i / 65536) % 2, int(i / 256) % 256, i % 256
        }'
    } >"$file"
}

# serial_of PORT: the SOA serial served for foobar.com, or nothing.
serial_of() {
    dig +short +time=1 +tries=1 -p "$1" @127.0.0.1 foobar.com SOA 2>/dev/null | awk '{print $3}'
}

# wait_serial PORT SERIAL: polls until SERIAL is served; prints the seconds it took.
wait_serial() {
    local port=$1 serial=$2 start
    start=$(date +%s.%N)
    for ((i = 0; i < 6000; i++)); do
        [[ $(serial_of "$port") == "$serial" ]] && {
            printf '%.2f\n' "$(echo "$(date +%s.%N) - $start" | bc)"
            return
        }
        sleep 0.05
    done
    die "serial $serial never served on port $port"
}

# kib PID FIELD: a /proc status field (VmRSS, VmHWM) of PID and its children, in KiB.
kib() {
    local pid=$1 field=$2 total=0 p
    for p in $pid $(pgrep -P "$pid" || true); do
        total=$((total + $(awk -v f="$field:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

mb() { echo "scale=0; $1 / 1024" | bc; }

mkdir -p "$WORK/zones"
ZONE=$WORK/zones/foobar.com.zone
echo "writing a zone of $ZONE_RECORDS A records..."
write_zone "$ZONE" 2026120501
echo "zone file: $(du -m "$ZONE" | cut -f1) MB"

port=$(free_port)
cat >"$WORK/onebox.toml" <<EOF
state_dir = "$WORK/state"
user = "$(id -un)"
[log]
level = "warn"
# Metrics on, as shipped (on a port of its own: nothing else is disturbed).
[metrics]
listen = "127.0.0.1:0"
[dns]
listen = ["127.0.0.1:$port"]
zones_dir = "$WORK/zones"
query_log = false
[web]
http_listen = []
https_listen = []
site_dir = "$ROOT/site"
[app]
enabled = false
EOF

read -r ob_check_s ob_check_kb < <(/usr/bin/time -f '%e %M' "$ONEBOX" --config "$WORK/onebox.toml" check 2>&1 >/dev/null | tail -1)
read -r nsd_check_s nsd_check_kb < <(/usr/bin/time -f '%e %M' nsd-checkzone foobar.com "$ZONE" 2>&1 >/dev/null | tail -1)

# onebox serving the zone, then a reload of it.
"$ONEBOX" --config "$WORK/onebox.toml" serve >"$WORK/onebox.log" 2>&1 </dev/null &
ob=$!
PIDS+=("$ob")
ob_serve_s=$(wait_serial "$port" 2026120501)
ob_rss=$(kib "$ob" VmRSS)
ob_hwm=$(kib "$ob" VmHWM)
sed -i -e 's/( 2026120501 /( 2026120502 /' -e 's/^host1 IN A .*/host1 IN A 192.0.2.99/' "$ZONE"
kill -HUP "$ob"
ob_reload_s=$(wait_serial "$port" 2026120502)
ob_reload_hwm=$(kib "$ob" VmHWM)
ob_reload_rss=$(kib "$ob" VmRSS)
kill "$ob"
wait "$ob" 2>/dev/null || true
PIDS=()
# NSD serving the same zone (the file as it is now, serial 2026120502).
nport=$(free_port)
nsd_conf "$nport" "$ZONE"
nsd -d -c "$WORK/nsd/nsd.conf" >>"$WORK/nsd/log" 2>&1 </dev/null &
nsd=$!
PIDS+=("$nsd")
nsd_serve_s=$(wait_serial "$nport" 2026120502)
nsd_rss=$(kib "$nsd" VmRSS)
nsd_hwm=$(kib "$nsd" VmHWM)

echo
echo "big zone: $ZONE_RECORDS A records"
printf '%-34s %10s %10s %8s\n' "" "onebox" "NSD" "ratio"
printf '%-34s %9ss %9ss %7sx\n' "check: time" "$ob_check_s" "$nsd_check_s" "$(ratio "$ob_check_s" "$nsd_check_s")"
printf '%-34s %8sMB %8sMB %7sx\n' "check: peak memory" "$(mb "$ob_check_kb")" "$(mb "$nsd_check_kb")" "$(ratio "$ob_check_kb" "$nsd_check_kb")"
printf '%-34s %9ss %9ss %7sx\n' "serve: time to the first answer" "$ob_serve_s" "$nsd_serve_s" "$(ratio "$ob_serve_s" "$nsd_serve_s")"
printf '%-34s %8sMB %8sMB %7sx\n' "serve: resident" "$(mb "$ob_rss")" "$(mb "$nsd_rss")" "$(ratio "$ob_rss" "$nsd_rss")"
printf '%-34s %8sMB %8sMB %7sx\n' "serve: peak" "$(mb "$ob_hwm")" "$(mb "$nsd_hwm")" "$(ratio "$ob_hwm" "$nsd_hwm")"
printf '%-34s %9ss\n' "reload: time to the new serial" "$ob_reload_s"
printf '%-34s %8sMB %21sx\n' "reload: resident after" "$(mb "$ob_reload_rss")" "$(ratio "$ob_reload_rss" "$nsd_rss")"
printf '%-34s %8sMB %21sx\n' "reload: peak (whole run)" "$(mb "$ob_reload_hwm")" "$(ratio "$ob_reload_hwm" "$nsd_hwm")"
echo "(NSD's memory: all its processes; onebox's ratios of the reload are to NSD's serving figures)"

# Shared by the benchmark scripts that source it: `die`, a work directory removed on exit with
# every process in PIDS stopped, and `free_port`. The sourcing script sets NAME first.

die() {
    echo "$NAME: $*" >&2
    exit 1
}

# needs TOOL...: each must be on the PATH.
needs() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool not found (.ci/run installs the Debian packages)"
    done
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/onebox-$NAME.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port free for both UDP and TCP on 127.0.0.1, below the kernel's ephemeral range.
free_port() {
    local port used
    used=$(ss -Hlnut | awk '{print $5}' | sed -n 's/^127\.0\.0\.1:\|^0\.0\.0\.0:\|^\*://p')
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 10000))
        grep -qx "$port" <<<"$used" || {
            echo "$port"
            return
        }
    done
    die "no free port found"
}

# ratio A B: A / B with two decimals.
ratio() { printf '%.2f' "$(echo "scale=3; $1 / $2" | bc)"; }

# nsd_conf PORT ZONEFILE: writes $WORK/nsd/nsd.conf, one server process on 127.0.0.1:PORT
# serving foobar.com from ZONEFILE, response rate limiting off, no remote control.
nsd_conf() {
    mkdir -p "$WORK/nsd"
    cat >"$WORK/nsd/nsd.conf" <<CONF
server:
    server-count: 1
    ip-address: 127.0.0.1@$1
    username: ""
    chroot: ""
    zonesdir: "$WORK/nsd"
    pidfile: "$WORK/nsd/nsd.pid"
    xfrdfile: "$WORK/nsd/xfrd.state"
    xfrdir: "$WORK/nsd"
    zonelistfile: "$WORK/nsd/zone.list"
    database: ""
    logfile: "$WORK/nsd/log"
    verbosity: 0
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: foobar.com
    zonefile: "$2"
CONF
}

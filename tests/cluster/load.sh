#!/usr/bin/env bash
# One loop of the client's load in the cluster test (tests/cluster/), run on the client host
# (`ip netns exec`), where /etc/resolv.conf names the local unbound: every name below goes
# through glibc's resolver, unbound, and box A or box B. It runs until the file STOP exists.
# Each attempt prints one line, times in seconds since the epoch:
#
#   START END KIND ok|fail WHAT DETAIL
#
#   load.sh get STOP CA PATH...   GETs of https://www.foobar.com/PATH, in turn (curl, by name)
#   load.sh lookup STOP           lookups of a new name each time (getent), under *.load.foobar.com
#   load.sh write STOP CA TOKEN   a post published every second through the API (POST /api/posts);
#                                 WHAT is its slug, ok when the server acknowledged it (201)
set -u
kind=$1 stop=$2
shift 2
detail() { tr -s ' \n' '__' <<<"$1"; }
case $kind in
get)
    ca=$1
    shift
    while [[ ! -e $stop ]]; do
        for path in "$@"; do
            start=$EPOCHREALTIME
            out=$(curl -sS -o /dev/null --max-time 20 --cacert "$ca" -w '%{http_code}' \
                "https://www.foobar.com$path" 2>&1)
            result=fail
            [[ $out == 200 ]] && result=ok
            echo "$start $EPOCHREALTIME get $result $path $(detail "$out")"
        done
    done
    ;;
lookup)
    n=0
    while [[ ! -e $stop ]]; do
        n=$((n + 1))
        name="q$n-$$.load.foobar.com"
        start=$EPOCHREALTIME
        out=$(getent ahostsv4 "$name" 2>&1)
        result=fail
        [[ $out == *198.51.100.10* ]] && result=ok
        echo "$start $EPOCHREALTIME lookup $result $name $(detail "${out:-no_answer}" | cut -c1-60)"
        sleep 0.05
    done
    ;;
write)
    ca=$1 token=$2
    n=0
    while [[ ! -e $stop ]]; do
        n=$((n + 1))
        slug="cluster-write-$n"
        body="{\"title\": \"Write $n\", \"slug\": \"$slug\", \"body_markdown\": \"Written under load.\", \"status\": \"published\"}"
        start=$EPOCHREALTIME
        out=$(curl -sS -o /dev/null --max-time 20 --cacert "$ca" -w '%{http_code}' \
            -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
            --data "$body" https://www.foobar.com/api/posts 2>&1)
        result=fail
        [[ $out == 201 ]] && result=ok
        echo "$start $EPOCHREALTIME write $result $slug $(detail "$out")"
        sleep 1
    done
    ;;
*)
    echo "load.sh: unknown kind $kind" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Application benchmark: what the database under onebox's app can do, measured in the same run
# as (later) onebox serving pages and API calls from it.
#
#   tests/bench/app.sh            (`make bench-app` runs it)
#
# A throwaway MariaDB started the way the test harness starts one (tests/harness/mariadb.rs): a
# datadir from mariadb-install-db in a temporary directory, mariadbd on a free loopback port,
# small InnoDB settings, removed afterwards. A `bench.posts` table shaped like the app's posts
# (BIGINT id, slug, title, ~2 KB body, published flag, timestamps) gets 1000 rows. Measured:
#   1. raw primary-key SELECTs    mariadb-slap over TCP, 50 connections,
#                                 `SELECT * FROM posts WHERE id = <random>`    queries/s
#   2. onebox GET /blog           (to come: see ONEBOX below)                  requests/s
#   3. onebox GET /api/posts      (to come)                                    requests/s
# and prints the rates and the work done per second of server CPU (user + system, read from
# /proc). MariaDB runs pinned to CPU 1 and the load generator to CPU 0 (taskset), as in web.sh.
# Loopback only; everything stops by itself (trap + timeouts). On a shared 2-core box only
# numbers from the same run mean anything.
#
# Environment: DURATION (seconds per measurement, default 10).
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
SERVER_CPU=1
CLIENT_CPU=0
CONNECTIONS=50

PATH="$PATH:/usr/sbin:/usr/local/sbin"
find_program() { # names... -> the first found
  local name
  for name in "$@"; do
    command -v "$name" && return 0
  done
  return 1
}
mariadbd=$(find_program mariadbd mysqld) || mariadbd=
install_db=$(find_program mariadb-install-db mysql_install_db) || install_db=
client=$(find_program mariadb mysql) || client=
slap=$(find_program mariadb-slap mysqlslap) || slap=
[ -n "$mariadbd" ] && [ -n "$install_db" ] ||
  { echo "app.sh: no MariaDB server: apt-get install mariadb-server" >&2; exit 2; }
[ -n "$client" ] && [ -n "$slap" ] ||
  { echo "app.sh: no MariaDB client tools: apt-get install mariadb-client" >&2; exit 2; }
for tool in taskset python3 timeout; do
  command -v "$tool" >/dev/null || { echo "app.sh: $tool is missing (apt-get install util-linux python3 coreutils)" >&2; exit 2; }
done

tmp=$(mktemp -d /tmp/onebox-bench-app.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The throwaway MariaDB, with the harness's settings.
innodb=(--innodb-buffer-pool-size=32M --loose-innodb-log-file-size=8M --loose-innodb-doublewrite=0
        --loose-innodb-flush-log-at-trx-commit=2 --loose-innodb-buffer-pool-load-at-startup=0
        --loose-innodb-buffer-pool-dump-at-shutdown=0 --skip-log-bin)
as_root=()
[ "$(id -u)" = 0 ] && as_root=(--user=root)
"$install_db" --no-defaults --auth-root-authentication-method=normal --skip-test-db \
  --datadir="$tmp/data" --tmpdir="$tmp" "${innodb[@]}" "${as_root[@]}" >"$tmp/install.log" 2>&1 ||
  { echo "app.sh: $install_db failed:" >&2; cat "$tmp/install.log" >&2; exit 1; }
db_port=$(free_port)
taskset -c "$SERVER_CPU" "$mariadbd" --no-defaults --datadir="$tmp/data" --socket="$tmp/sock" \
  --port="$db_port" --bind-address=127.0.0.1 --pid-file="$tmp/mariadbd.pid" \
  --log-error="$tmp/error.log" --tmpdir="$tmp" "${innodb[@]}" --skip-name-resolve \
  --max-connections=1000 --character-set-server=utf8mb4 "${as_root[@]}" </dev/null >"$tmp/output.log" 2>&1 &
pids+=($!)
mariadbd_pid=$!

sql() { "$client" --no-defaults --socket="$tmp/sock" -uroot --batch --skip-column-names -e "$1"; }
for _ in $(seq 400); do
  sql 'SELECT 1' >/dev/null 2>&1 && break
  kill -0 "$mariadbd_pid" 2>/dev/null || break
  sleep 0.05
done
sql 'SELECT 1' >/dev/null 2>&1 ||
  { echo "app.sh: mariadbd did not come up:" >&2; tail -20 "$tmp/error.log" "$tmp/output.log" >&2; exit 1; }

# 1000 posts, about 2 KB of body each; 9 in 10 published.
sql "
CREATE DATABASE bench CHARACTER SET utf8mb4;
CREATE TABLE bench.posts (
  id BIGINT NOT NULL PRIMARY KEY,
  slug VARCHAR(255) NOT NULL UNIQUE,
  title VARCHAR(255) NOT NULL,
  body TEXT NOT NULL,
  published BOOLEAN NOT NULL DEFAULT FALSE,
  created_at DATETIME(6) NOT NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB;
INSERT INTO bench.posts
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
SELECT i, CONCAT('post-', i), CONCAT('Post number ', i),
       SUBSTRING(REPEAT(CONCAT('Paragraph of post ', i, ': lorem ipsum dolor sit amet. '), 60), 1, 2048),
       i % 10 <> 0, NOW(6) - INTERVAL (1000 - i) HOUR, NOW(6)
FROM n;"
[ "$(sql 'SELECT COUNT(*), SUM(LENGTH(body)) FROM bench.posts')" = "$(printf '1000\t2048000')" ] ||
  { echo "app.sh: bench.posts is not as expected" >&2; exit 1; }

# Primary-key lookups in a fixed random order (a query with RAND() in WHERE would scan).
python3 - "$tmp/pk.sql" <<'EOF'
import random, sys
r = random.Random(4)
with open(sys.argv[1], "w") as f:
    f.write("".join(f"SELECT * FROM posts WHERE id = {r.randint(1, 1000)};" for _ in range(5000)))
EOF

limit=$((DURATION + 60))
server_cpu() { # pids... -> user+system seconds so far, all threads
  local pid total=0
  for pid in "$@"; do
    total=$(awk -v t="$total" '{printf "%.2f", t + ($14 + $15) / 100}' "/proc/$pid/stat")
  done
  echo "$total"
}

# Prints "<queries per second> <queries completed>".
slap_qps() { # total queries
  timeout "$limit" taskset -c "$CLIENT_CPU" "$slap" --no-defaults --protocol=tcp -h127.0.0.1 \
    -P"$db_port" -uroot --create-schema=bench --no-drop --concurrency="$CONNECTIONS" \
    --iterations=1 --number-of-queries="$1" --query="$tmp/pk.sql" --delimiter=';' |
    awk -v c="$CONNECTIONS" '/Average number of seconds/ {s = $(NF - 1)} /Average number of queries per client/ {q = $NF}
      END {if (s > 0) printf "%.0f %d\n", c * q / s, c * q}'
}

report=()
add_row() { # label unit rate count cpu0 cpu1
  report+=("$(python3 -c '
import sys
label, unit = sys.argv[1:3]
rate, n, c0, c1 = map(float, sys.argv[3:])
print(f"{label + chr(32) + chr(40) + unit + chr(41):40} {rate:12.0f}   {n / max(c1 - c0, 0.01):12.0f}")
' "$@")")
}

# 1. Raw primary-key SELECTs: a short run to size the measured one to about DURATION seconds.
read -r warm _ < <(slap_qps $((CONNECTIONS * 200)))
[ -n "${warm:-}" ] || { echo "app.sh: mariadb-slap failed" >&2; exit 1; }
queries=$(( (warm * DURATION / CONNECTIONS + 1) * CONNECTIONS ))
c0=$(server_cpu "$mariadbd_pid"); read -r qps n < <(slap_qps "$queries"); c1=$(server_cpu "$mariadbd_pid")
add_row "raw PK SELECT, $CONNECTIONS conns" "queries/s" "$qps" "$n" "$c0" "$c1"

# ---------------------------------------------------------------------------------------------
# ONEBOX: to be added once the app serves posts from MariaDB (issue 4). The plan:
#   - build first (`make bench-app` will then depend on `release`) and check for wrk;
#   - point onebox at this server (mysql://root@127.0.0.1:$db_port/onebox), let its migrations
#     create the schema, and load 1000 posts like the ones above (published, ~2 KB bodies);
#   - run onebox on SERVER_CPU next to MariaDB (the one-box stack shares the server's core),
#     access log off, and measure with wrk -t1 -c$CONNECTIONS on CLIENT_CPU:
#       GET /blog             add_row "onebox GET /blog" "req/s" ...
#       GET /api/posts        add_row "onebox GET /api/posts" "req/s" ...
#     with server CPU = server_cpu "$onebox_pid" "$mariadbd_pid", so each row compares with the
#     raw query rate above.
# ---------------------------------------------------------------------------------------------

echo "$("$mariadbd" --version | sed 's/ for .*//; s/^.*Ver //'), ${DURATION}s per measurement, server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
printf '\n%-40s %12s   %12s\n' "measurement" "rate" "per server CPU-second"
printf '%s\n' "${report[@]}"

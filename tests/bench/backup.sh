#!/usr/bin/env bash
# Backup benchmark (issue 15): the time and size of `onebox backup` and of `onebox restore` of
# 100 000 posts, beside SQLite's own online backup of the same database file (the floor: a
# page copy, no dump, no checksums), measured in the same run.
#
#   tests/bench/backup.sh            (after `cargo build --release`; `make bench-backup` does both)
#
# The database is the embedded default (SQLite in state_dir), its schema made by
# `onebox migrate up`, then filled with python3's sqlite3 module: 100 000 posts (slug post-N, a
# 1.5 KB Markdown body and its HTML, 9 in 10 published) by one user. The site and zones are the
# repository's. Each step runs once, timed with the shell's clock:
#   1. onebox backup --to DIR         the archive (a gzip'd JSON-lines dump + files + manifest)
#   2. onebox restore FILE            into a fresh state_dir (schema, load, one transaction)
#   3. sqlite3 online backup          Connection.backup() of the same file (python3)
# The table shows seconds, bytes, and onebox's time as a multiple of SQLite's copy.
set -euo pipefail
cd "$(dirname "$0")/../.."
ONEBOX=${ONEBOX:-target/release/onebox}
POSTS=${POSTS:-100000}
[ -x "$ONEBOX" ] || { echo "build first: cargo build --release" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/src" "$WORK/dst"
cat > "$WORK/src/onebox.toml" <<TOML
state_dir = "$WORK/src/state"
[log]
level = "warn"
[dns]
zones_dir = "$PWD/zones"
[web]
site_dir = "$PWD/site"
TOML
cat > "$WORK/dst/onebox.toml" <<TOML
state_dir = "$WORK/dst/state"
[log]
level = "warn"
[dns]
zones_dir = "$WORK/dst/zones"
[web]
site_dir = "$WORK/dst/site"
TOML
"$ONEBOX" --config "$WORK/src/onebox.toml" migrate up >/dev/null
printf 'correct horse battery\n' | "$ONEBOX" --config "$WORK/src/onebox.toml" user add --email bench@foobar.com --admin 2>/dev/null
python3 - "$WORK/src/state/onebox.db" "$POSTS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = int(sys.argv[2])
para = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 18
rows = ((f"post-{i}", f"Post number {i}", para, f"<p>{para}</p>", "draft" if i % 10 == 0 else "published",
         1, None if i % 10 == 0 else "2026-12-05 03:00:00", "2026-12-05 03:00:00", "2026-12-05 03:00:00", para[:300])
        for i in range(1, n + 1))
db.executemany("INSERT INTO posts (slug, title, body_markdown, body_html, status, author_id, published_at, created_at, updated_at, excerpt) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
PY
DB_BYTES=$(stat -c %s "$WORK/src/state/onebox.db")

now() { date +%s.%N; }
t0=$(now)
ARCHIVE=$("$ONEBOX" --config "$WORK/src/onebox.toml" backup --to "$WORK/backups" 2>/dev/null)
t1=$(now)
"$ONEBOX" --config "$WORK/dst/onebox.toml" restore "$ARCHIVE" >/dev/null 2>&1
t2=$(now)
python3 - "$WORK/src/state/onebox.db" "$WORK/copy.db" <<'PY'
import sqlite3, sys
src = sqlite3.connect(sys.argv[1]); dst = sqlite3.connect(sys.argv[2])
src.backup(dst); dst.close()
PY
t3=$(now)
RESTORED=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from posts').fetchone()[0])" "$WORK/dst/state/onebox.db")
[ "$RESTORED" = "$POSTS" ] || { echo "restore lost posts: $RESTORED of $POSTS" >&2; exit 1; }

awk -v b="$(echo "$t1 - $t0" | bc)" -v r="$(echo "$t2 - $t1" | bc)" -v s="$(echo "$t3 - $t2" | bc)" \
    -v size="$(stat -c %s "$ARCHIVE")" -v db="$DB_BYTES" -v copy="$(stat -c %s "$WORK/copy.db")" -v n="$POSTS" 'BEGIN {
  printf "%d posts, SQLite file %.1f MB\n", n, db / 1e6
  printf "%-28s %9s %12s %10s\n", "step", "seconds", "bytes", "x sqlite"
  printf "%-28s %9.2f %12d %10.1f\n", "onebox backup", b, size, b / s
  printf "%-28s %9.2f %12s %10.1f\n", "onebox restore", r, "-", r / s
  printf "%-28s %9.2f %12d %10s\n", "sqlite3 online backup", s, copy, "1.0"
}'

#!/bin/sh
# HAProxy's check of a Galera node (deploy/cluster/haproxy.cfg: `check port 9200`): answers
# HTTP 200 when the node is synced with the cluster and takes queries (wsrep_local_state 4,
# wsrep_ready ON), 503 otherwise: stopping, joining, catching up, or cut off from the
# majority. A node in those states still takes logins, which is all `option mysql-check`
# would see.
#
# One connection, one answer: run it per connection on port 9200 of each database node, by
# systemd (galera-check.socket with Accept=yes, galera-check@.service running this script with
# StandardInput=socket) or `socat TCP-LISTEN:9200,reuseaddr,fork EXEC:galera-check.sh`.
# Arguments are passed to the mariadb client (default: root over the local socket).

# The request: read up to its blank line (closing with it unread would reset the connection).
while IFS= read -r line; do
    case $line in '' | "$(printf '\r')") break ;; esac
done
# Two lines, by name: wsrep_local_state (4: synced), wsrep_ready (ON: takes queries).
state=$(mariadb "$@" --connect-timeout=1 --batch --skip-column-names \
    -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state', 'wsrep_ready')" \
    2>/dev/null | cut -f2 | tr '\n' ' ')
if [ "$state" = "4 ON " ]; then
    printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nsynced\n'
else
    printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nnot synced\n'
fi

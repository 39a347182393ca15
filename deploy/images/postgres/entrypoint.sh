#!/bin/sh
# First start: initdb with POSTGRES_USER / POSTGRES_PASSWORD (scram over TCP, trust on
# the local socket), then POSTGRES_DB. Every start: the server on all addresses, with
# any extra arguments (`postgres -c fsync=off`).
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH="$bin:$PATH"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
case "${1:-postgres}" in
  postgres) [ $# -gt 0 ] && shift ;;
  -*) ;;
  *) exec "$@" ;;
esac
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required on first start}"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "postgres: initialized $PGDATA for $user/$db"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"

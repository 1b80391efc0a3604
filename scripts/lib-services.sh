#!/usr/bin/env bash
# Shared helpers for scripts/test, scripts/demo and scripts/bench: install what is missing and
# start a throwaway PostgreSQL cluster and Redis server on free loopback ports.
# Source it, then call: sluice_install_deps; sluice_start_services; (trap sluice_stop_services)
set -euo pipefail

SLUICE_APT_PACKAGES=(postgresql redis-server libpq-dev libhiredis-dev libcurl4-openssl-dev pkg-config)

sluice_install_deps() {
  local missing=()
  for p in "${SLUICE_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "==> installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian's postgresql package starts a system cluster; we never use it.
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$PG_BIN/initdb" ] || { echo "initdb not found under /usr/lib/postgresql" >&2; exit 1; }
  export PG_BIN
}

sluice_free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

# sluice_start_services [fsync=on|off]
sluice_start_services() {
  local fsync="${1:-off}"
  SLUICE_RUN_DIR=$(mktemp -d /tmp/sluice-run.XXXXXX)
  chmod 755 "$SLUICE_RUN_DIR"; chown postgres:postgres "$SLUICE_RUN_DIR"
  export SLUICE_RUN_DIR
  PG_PORT=$(sluice_free_port); REDIS_PORT=$(sluice_free_port)
  export PG_PORT REDIS_PORT
  local pgdata="$SLUICE_RUN_DIR/pg"
  mkdir -p "$pgdata"; chown postgres:postgres "$pgdata"; chmod 700 "$pgdata"
  echo "==> PostgreSQL on 127.0.0.1:$PG_PORT (fsync=$fsync), data in $pgdata"
  su postgres -s /bin/sh -c "'$PG_BIN/initdb' -D '$pgdata' -U postgres -A trust -E UTF8 --locale=C.UTF-8 >'$SLUICE_RUN_DIR/initdb.log' 2>&1" \
    || { cat "$SLUICE_RUN_DIR/initdb.log" >&2; exit 1; }
  cat >>"$pgdata/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$SLUICE_RUN_DIR'
max_connections = 400
shared_buffers = 512MB
fsync = $fsync
synchronous_commit = $( [ "$fsync" = on ] && echo on || echo off )
full_page_writes = $fsync
max_wal_size = 4GB
log_min_messages = warning
CONF
  # Extra server settings for experiments (e.g. SLUICE_PG_EXTRA_CONF='autovacuum_naptime = 10s').
  if [ -n "${SLUICE_PG_EXTRA_CONF:-}" ]; then printf '%s\n' "$SLUICE_PG_EXTRA_CONF" >>"$pgdata/postgresql.conf"; fi
  su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$pgdata' -l '$SLUICE_RUN_DIR/pg.log' -w -t 60 start >/dev/null" \
    || { cat "$SLUICE_RUN_DIR/pg.log" >&2; exit 1; }
  echo "==> Redis on 127.0.0.1:$REDIS_PORT (no persistence)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$SLUICE_RUN_DIR/redis.pid" --logfile "$SLUICE_RUN_DIR/redis.log" --dir "$SLUICE_RUN_DIR"
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export PGDATA_DIR="$pgdata"
  export SLUICE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export SLUICE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  # Lets tests restart the server (pool recovery after a full restart).
  export SLUICE_TEST_PG_CTL="su postgres -s /bin/sh -c \"'$PG_BIN/pg_ctl' -D '$pgdata' -w -t 60 -m fast restart -l '$SLUICE_RUN_DIR/pg.log'\""
}

sluice_stop_services() {
  [ -n "${SLUICE_RUN_DIR:-}" ] || return 0
  if [ -f "$SLUICE_RUN_DIR/redis.pid" ]; then kill "$(cat "$SLUICE_RUN_DIR/redis.pid")" 2>/dev/null || true; fi
  if [ -d "${PGDATA_DIR:-}" ]; then
    su postgres -s /bin/sh -c "'$PG_BIN/pg_ctl' -D '$PGDATA_DIR' -m immediate stop >/dev/null 2>&1" || true
  fi
  rm -rf "$SLUICE_RUN_DIR"
  SLUICE_RUN_DIR=""
}

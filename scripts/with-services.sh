#!/usr/bin/env bash
# Run a command with PostgreSQL and Redis available, e.g.
#   scripts/with-services.sh .venv/bin/pytest -x
# Uses DATABASE_URL / REDIS_URL if set, else servers already running on the
# default ports, else starts throwaway ones (removed on exit). Exits with the
# command's exit code.
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

# Default ports to probe for already-running servers (overridable, mainly to
# test the throwaway path).
PG_PORT=${SELFCARE_PG_PORT:-5432}
REDIS_PORT=${SELFCARE_REDIS_PORT:-6379}

TMP=""
PG_STARTED=""
REDIS_STARTED=""

as_pg() {  # initdb/pg_ctl refuse to run as root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
    if [ -n "$REDIS_STARTED" ]; then
        redis-cli -h 127.0.0.1 -p "$REDIS_STARTED" shutdown nosave >/dev/null 2>&1 || true
    fi
    if [ -n "$PG_STARTED" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$TMP/pgdata" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tmpdir() {
    if [ -z "$TMP" ]; then
        TMP=$(mktemp -d "${TMPDIR:-/tmp}/with-services.XXXXXX")
        chmod 755 "$TMP"  # the postgres user must be able to traverse it
    fi
}

# True if something listens on 127.0.0.1:$1 (bash /dev/tcp, no extra tools).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Newest installed server version's bin dir, if any.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
PG_ISREADY=$(command -v pg_isready || true)
if [ -z "$PG_ISREADY" ] && [ -x "$PG_BIN/pg_isready" ]; then PG_ISREADY=$PG_BIN/pg_isready; fi

pg_ready() { [ -n "$PG_ISREADY" ] && "$PG_ISREADY" -q -t 3 -h 127.0.0.1 -p "$1" >/dev/null 2>&1; }
redis_ready() {
    command -v redis-cli >/dev/null &&
        [ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

# --- PostgreSQL --------------------------------------------------------------
if [ -n "${DATABASE_URL:-}" ]; then
    pg_desc="from DATABASE_URL"
elif pg_ready "$PG_PORT"; then
    # pytest-django creates test_selfcare itself via the postgres maintenance db.
    export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/selfcare"
    pg_desc="at 127.0.0.1:$PG_PORT (running server)"
elif [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ]; then
    tmpdir
    port=54329
    while port_in_use "$port" || pg_ready "$port"; do port=$((port + 1)); done
    mkdir -p "$TMP/pgdata" "$TMP/pgsock"
    touch "$TMP/pg.log"
    chmod 700 "$TMP/pgdata"
    chmod 1777 "$TMP/pgsock"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$TMP/pgdata" "$TMP/pg.log"; fi
    if ! as_pg "$PG_BIN/initdb" -D "$TMP/pgdata" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1; then
        tail -n 20 "$TMP/initdb.log" >&2
        echo "with-services: initdb failed (log above)" >&2
        exit 1
    fi
    # Durability off: it is a throwaway test cluster.
    PG_STARTED=$port
    if ! as_pg "$PG_BIN/pg_ctl" -D "$TMP/pgdata" -l "$TMP/pg.log" -w -t 30 \
            -o "-p $port -k $TMP/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1 || ! pg_ready "$port"; then
        tail -n 20 "$TMP/pg.log" >&2
        echo "with-services: could not start a temporary PostgreSQL (log above)" >&2
        exit 1
    fi
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/selfcare"
    pg_desc="at 127.0.0.1:$port (temporary cluster, $("$PG_BIN/postgres" -V | awk '{print $3}'))"
else
    echo "make test needs PostgreSQL: set DATABASE_URL, start a server on 127.0.0.1:$PG_PORT, or install the server (apt-get install postgresql)." >&2
    exit 1
fi

# --- Redis -------------------------------------------------------------------
if [ -n "${REDIS_URL:-}" ]; then
    redis_desc="from REDIS_URL"
elif redis_ready "$REDIS_PORT"; then
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/15"  # db 15 is for tests
    redis_desc="at 127.0.0.1:$REDIS_PORT (running server, db 15)"
elif command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    tmpdir
    port=63790
    while port_in_use "$port"; do port=$((port + 1)); done
    redis-server --daemonize yes --save "" --appendonly no --port "$port" \
        --bind 127.0.0.1 --pidfile "$TMP/redis.pid" --dir "$TMP" \
        --logfile "$TMP/redis.log" >/dev/null
    REDIS_STARTED=$port
    for _ in $(seq 50); do redis_ready "$port" && break; sleep 0.2; done
    if ! redis_ready "$port"; then
        tail -n 20 "$TMP/redis.log" >&2 || true
        echo "with-services: could not start a temporary Redis (log above)" >&2
        exit 1
    fi
    export REDIS_URL="redis://127.0.0.1:$port/15"
    redis_desc="at 127.0.0.1:$port (temporary server, db 15)"
else
    echo "make test needs Redis: set REDIS_URL, start a server on 127.0.0.1:$REDIS_PORT, or install it (apt-get install redis-server)." >&2
    exit 1
fi

echo "with-services: PostgreSQL $pg_desc, Redis $redis_desc" >&2

# Not exec: the EXIT trap must still run to stop what we started.
set +e
"$@"
rc=$?
set -e
exit "$rc"

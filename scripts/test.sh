#!/usr/bin/env bash
# Single test entry for reportd (run by CI via .ci/run, also fine locally).
#
# 1. Makes sure MariaDB (127.0.0.1:3306, root, empty password) and PostgreSQL
#    (127.0.0.1:5432, trust auth) answer: starts them if installed, installs
#    them (as root, via apt) if missing, fixes TCP auth if needed.
# 2. Creates the `test` database on both and exports
#    REPORTD_TEST_MYSQL_URL / REPORTD_TEST_PG_URL (unless already set).
# 3. Makes sure python3 can import aiosmtpd (the SMTP server of the e-mail
#    tests, tests/stand_ins/smtp.py) and openapi-spec-validator (the API
#    document's test), openapi-python-client (a client generated from it)
#    and schemathesis (scripts/api_fuzz.sh): pip installs them if not. Installs Debian's
#    systemd package when systemd-analyze is missing (tests/it/systemd.rs runs
#    `systemd-analyze verify` on the unit; systemd need not be running).
# 4. Runs cargo fmt --check, clippy -D warnings and the tests
#    (nextest + doc tests if nextest is installed, cargo test otherwise),
#    then scripts/api_fuzz.sh (Schemathesis against the API's document).
#
# Environment knobs:
#   REPORTD_TEST_SERVICES_ONLY=1  stop after the service setup (no cargo).
#   REPORTD_TEST_MYSQL_URL / REPORTD_TEST_PG_URL  kept if already set.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

START_SECONDS=$SECONDS
finish() {
    local rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "==> done in $((SECONDS - START_SECONDS))s"
    else
        echo "==> FAILED (exit $rc) after $((SECONDS - START_SECONDS))s" >&2
    fi
}
trap finish EXIT

die() {
    echo "error: $*" >&2
    exit 1
}

step() {
    echo "==> $*"
}

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1
WAIT_SECS=60
LOG_DIR=${TMPDIR:-/tmp}

# Run a command as another system user (we are root when this is used).
as_user() {
    local user=$1
    shift
    if command -v runuser >/dev/null 2>&1; then
        runuser -u "$user" -- "$@"
    else
        su -s /bin/sh "$user" -c "$(printf '%q ' "$@")"
    fi
}

# ---------------------------------------------------------------------------
# Package installation (only when something is missing and we are root)
# ---------------------------------------------------------------------------

mysql_cli() { command -v mariadb 2>/dev/null || command -v mysql 2>/dev/null; }
mysql_admin() { command -v mariadb-admin 2>/dev/null || command -v mysqladmin 2>/dev/null; }
mysqld_bin() {
    local b
    for b in /usr/sbin/mariadbd /usr/sbin/mysqld; do
        [[ -x $b ]] && { echo "$b"; return 0; }
    done
    return 1
}

mariadb_installed() { mysql_cli >/dev/null && mysql_admin >/dev/null && mysqld_bin >/dev/null; }
pg_installed() {
    command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 &&
        command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G '/etc/postgresql/*/*/postgresql.conf' >/dev/null
}
# systemd-analyze (Debian package systemd) verifies the unit file; systemd need not run.
systemd_analyze_installed() { command -v systemd-analyze >/dev/null 2>&1; }
# The web console's browser tests drive Debian's Chromium through its chromedriver; a CJK font
# makes the Chinese pages' screenshots (target/console-screenshots) readable.
chromium_installed() { [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; }
cjk_font_installed() { command -v fc-list >/dev/null 2>&1 && [[ -n $(fc-list :lang=zh 2>/dev/null) ]]; }

APT_UPDATED=0
apt_install() {
    [[ $IS_ROOT -eq 1 ]] || die "packages missing ($*) and not running as root; install them manually"
    command -v apt-get >/dev/null 2>&1 || die "packages missing ($*) and apt-get is not available"
    local log="$LOG_DIR/reportd-apt.log"
    echo "installing $* (log: $log)"
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then
        apt-get update >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    apt-get install -y --no-install-recommends "$@" >>"$log" 2>&1 ||
        { tail -n 30 "$log" >&2; die "apt-get install $* failed"; }
}

# ---------------------------------------------------------------------------
# MariaDB
# ---------------------------------------------------------------------------

MYSQL_HOST=127.0.0.1
MYSQL_PORT=3306

# Query over TCP exactly as the tests will connect: root, empty password.
mysql_tcp() {
    "$(mysql_cli)" --no-defaults --protocol=TCP -h"$MYSQL_HOST" -P"$MYSQL_PORT" -uroot \
        --connect-timeout=2 -N -B "$@" </dev/null
}
mysql_ok() { mysql_tcp -e 'select 1' >/dev/null 2>&1; }
# Server is up (even if it refuses our credentials).
mysql_alive() {
    "$(mysql_admin)" --no-defaults --protocol=TCP -h"$MYSQL_HOST" -P"$MYSQL_PORT" -uroot \
        --connect-timeout=2 ping </dev/null >/dev/null 2>&1
}

mysqld_option() { # value of a [mysqld] option from the config files, if any
    my_print_defaults --mysqld 2>/dev/null | sed -n "s/^--$1=//p" | tail -n 1
}

MYSQLD_LOG="$LOG_DIR/reportd-mariadbd.log"

mysql_start() {
    local bin
    bin=$(mysqld_bin) || die "mariadbd binary not found"
    if [[ $IS_ROOT -eq 1 ]]; then
        local sock_dir log_err datadir
        sock_dir=$(dirname "$(mysqld_option socket)")
        [[ $sock_dir == . || -z $sock_dir ]] && sock_dir=/run/mysqld
        mkdir -p "$sock_dir" /run/mysqld
        chown mysql:mysql "$sock_dir" /run/mysqld
        log_err=$(mysqld_option log-error)
        if [[ $log_err == /* ]]; then
            mkdir -p "$(dirname "$log_err")"
            chown mysql:mysql "$(dirname "$log_err")" 2>/dev/null || true
        fi
        datadir=$(mysqld_option datadir)
        datadir=${datadir:-/var/lib/mysql}
        if [[ ! -d $datadir/mysql ]] && command -v mariadb-install-db >/dev/null 2>&1; then
            mariadb-install-db --user=mysql --datadir="$datadir" >"$LOG_DIR/reportd-mariadb-install-db.log" 2>&1 ||
                die "mariadb-install-db failed, see $LOG_DIR/reportd-mariadb-install-db.log"
        fi
    fi
    local ssd_args=(--start --oknodo --background --exec "$bin")
    if start-stop-daemon --help 2>&1 | grep -q -- '--output'; then
        ssd_args+=(--output "$MYSQLD_LOG")
    fi
    local mysqld_args=()
    [[ $IS_ROOT -eq 1 ]] && mysqld_args+=(--user=mysql)
    start-stop-daemon "${ssd_args[@]}" -- "${mysqld_args[@]}" >/dev/null ||
        die "could not start MariaDB ($bin)"
}

# Make root@127.0.0.1 / root@localhost / root@::1 log in over TCP with an
# empty password. Uses the unix socket as OS root (unix_socket auth).
mysql_fix_auth() {
    [[ $IS_ROOT -eq 1 ]] || return 1
    local host sql=""
    for host in localhost 127.0.0.1 ::1; do
        sql+="CREATE USER IF NOT EXISTS 'root'@'$host';"
        sql+="ALTER USER 'root'@'$host' IDENTIFIED VIA mysql_native_password USING PASSWORD('');"
        sql+="GRANT ALL PRIVILEGES ON *.* TO 'root'@'$host' WITH GRANT OPTION;"
    done
    sql+="FLUSH PRIVILEGES;"
    "$(mysql_cli)" -uroot -e "$sql" </dev/null >/dev/null 2>&1
}

mysql_fail() {
    {
        echo "MariaDB is not answering on $MYSQL_HOST:$MYSQL_PORT as root with an empty password."
        echo "  check: $(mysql_cli) -h$MYSQL_HOST -P$MYSQL_PORT -uroot -e 'select 1'"
        mysql_tcp -e 'select 1' 2>&1 | sed 's/^/  -> /' || true
        local f log_err
        log_err=$(mysqld_option log-error)
        for f in "$MYSQLD_LOG" "$log_err"; do
            if [[ -n $f && -r $f ]]; then
                echo "  last lines of $f:"
                tail -n 15 "$f" | sed 's/^/    /'
            fi
        done
    } >&2
    die "MariaDB setup failed: $*"
}

ensure_mysql() {
    local how="running"
    if ! mysql_ok; then
        if ! mysql_alive; then
            mysql_start
            how="started"
            local deadline=$((SECONDS + WAIT_SECS))
            until mysql_alive; do
                ((SECONDS < deadline)) || mysql_fail "not up after ${WAIT_SECS}s"
                sleep 1
            done
        fi
        if ! mysql_ok; then
            mysql_fix_auth || true
            mysql_ok || mysql_fail "server is up but root cannot log in over TCP"
            how="$how, root auth fixed"
        fi
    fi
    mysql_tcp -e 'CREATE DATABASE IF NOT EXISTS `test`' >/dev/null ||
        mysql_fail "cannot create database test"
    echo "mariadb: ok ($how, $MYSQL_HOST:$MYSQL_PORT, user root)"
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=""

pg_query() { # user, args...
    local user=$1
    shift
    PGCONNECT_TIMEOUT=2 psql -X -w -q -At -h "$PG_HOST" -p "$PG_PORT" -U "$user" -d postgres \
        -v ON_ERROR_STOP=1 "$@" </dev/null
}
pg_ok() {
    local user
    for user in postgres root; do
        if pg_query "$user" -c 'select 1' >/dev/null 2>&1; then
            PG_USER=$user
            return 0
        fi
    done
    return 1
}
pg_alive() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 </dev/null >/dev/null 2>&1; }

# "version cluster" of the cluster configured for $PG_PORT, else the newest one.
pg_cluster() {
    local c
    c=$(pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print $1, $2; exit }')
    if [[ -z $c ]]; then
        c=$(pg_lsclusters -h 2>/dev/null | sort -k1,1nr | awk '{ print $1, $2; exit }')
    fi
    if [[ -z $c ]]; then
        local v
        v=$(ls /etc/postgresql 2>/dev/null | sort -nr | head -n 1)
        [[ -n $v ]] && c="$v main"
    fi
    [[ -n $c ]] || return 1
    echo "$c"
}

PG_START_LOG="$LOG_DIR/reportd-pg_ctlcluster.log"

pg_start() {
    local c
    c=$(pg_cluster) || die "no PostgreSQL cluster found (pg_lsclusters / /etc/postgresql)"
    # shellcheck disable=SC2086 # "version cluster" is intentionally split
    pg_ctlcluster --skip-systemctl-redirect $c start >"$PG_START_LOG" 2>&1 || {
        # "already running" is fine; anything else is reported by pg_fail later.
        grep -qi 'already running' "$PG_START_LOG" || cat "$PG_START_LOG" >&2
    }
}

# Trust TCP connections from localhost and make sure role root exists.
# Talks to the server over its unix socket as the postgres OS user (peer auth).
pg_fix_auth() {
    [[ $IS_ROOT -eq 1 ]] || return 1
    local hba
    hba=$(cd / && as_user postgres psql -X -w -At -p "$PG_PORT" -c 'show hba_file' </dev/null 2>/dev/null) || return 1
    [[ -f $hba ]] || return 1
    if ! grep -q 'reportd-test-trust' "$hba"; then
        local tmp
        tmp=$(mktemp)
        {
            echo "# reportd-test-trust: added by scripts/test.sh (first match wins)"
            echo "host    all    all    127.0.0.1/32    trust"
            echo "host    all    all    ::1/128         trust"
            cat "$hba"
        } >"$tmp"
        cat "$tmp" >"$hba" # keep owner/permissions of the original file
        rm -f "$tmp"
    fi
    (cd / && as_user postgres psql -X -w -q -p "$PG_PORT" -v ON_ERROR_STOP=1 </dev/null >/dev/null 2>&1 \
        -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'root') THEN CREATE ROLE root SUPERUSER LOGIN; END IF; END \$\$" \
        -c 'SELECT pg_reload_conf()') || return 1
    sleep 1 # reload is asynchronous
}

pg_fail() {
    {
        echo "PostgreSQL is not answering on $PG_HOST:$PG_PORT with trust auth (user postgres or root)."
        echo "  check: psql -h $PG_HOST -p $PG_PORT -U postgres -d postgres -c 'select 1'"
        pg_query postgres -c 'select 1' 2>&1 | sed 's/^/  -> /' || true
        [[ -s $PG_START_LOG ]] && { echo "  pg_ctlcluster output:"; sed 's/^/    /' "$PG_START_LOG"; }
        local c log
        if c=$(pg_cluster 2>/dev/null); then
            log=/var/log/postgresql/postgresql-${c% *}-${c#* }.log
            if [[ -r $log ]]; then
                echo "  last lines of $log:"
                tail -n 15 "$log" | sed 's/^/    /'
            fi
        fi
    } >&2
    die "PostgreSQL setup failed: $*"
}

ensure_pg() {
    local how="running"
    if ! pg_ok; then
        if ! pg_alive; then
            pg_start
            how="started"
            local deadline=$((SECONDS + WAIT_SECS))
            until pg_alive; do
                ((SECONDS < deadline)) || pg_fail "not up after ${WAIT_SECS}s"
                sleep 1
            done
        fi
        if ! pg_ok; then
            pg_fix_auth || true
            pg_ok || pg_fail "server is up but neither postgres nor root can log in over TCP"
            how="$how, auth fixed"
        fi
    fi
    if [[ -z $(pg_query "$PG_USER" -c "SELECT 1 FROM pg_database WHERE datname = 'test'") ]]; then
        pg_query "$PG_USER" -c 'CREATE DATABASE test' >/dev/null 2>&1 ||
            pg_query "$PG_USER" -c "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
            pg_fail "cannot create database test"
    fi
    echo "postgres: ok ($how, $PG_HOST:$PG_PORT, user $PG_USER)"
}

# ---------------------------------------------------------------------------
# Python packages the tests use: aiosmtpd (the real SMTP server the e-mail tests start,
# tests/stand_ins/smtp.py) and openapi-spec-validator (tests/it/api_contract.rs validates
# /api/openapi.json with it)
# ---------------------------------------------------------------------------

# ensure_python_module MODULE PACKAGE: pip installs PACKAGE unless python3 imports MODULE.
ensure_python_module() {
    local module=$1 package=$2
    command -v python3 >/dev/null 2>&1 || apt_install python3 python3-pip
    if python3 -c "import $module" >/dev/null 2>&1; then
        echo "$package: ok (installed)"
        return 0
    fi
    local log="$LOG_DIR/reportd-pip.log"
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    # A Debian-managed python3 refuses plain pip installs (PEP 668).
    python3 -m pip install --quiet "$package" >"$log" 2>&1 ||
        python3 -m pip install --quiet --break-system-packages "$package" >>"$log" 2>&1 ||
        { tail -n 30 "$log" >&2; die "pip install $package failed"; }
    python3 -c "import $module" >/dev/null 2>&1 ||
        die "python3 still cannot import $module after pip install $package (log: $log)"
    echo "$package: ok (installed with pip)"
}

# ---------------------------------------------------------------------------
# Storage servers of the delivery tests (issue 30): moto_server (S3, path-style), pyftpdlib
# (FTP), asyncssh (an SFTP server), driven by the system's OpenSSH client as reportd drives
# it. tests/stand_ins/storage.py starts a fresh one of each per test on a free port of
# 127.0.0.1 (own keys, own known-hosts file, own bucket), so nothing is shared between tests
# and nothing is left running; this block installs what it needs, idempotently.
# ---------------------------------------------------------------------------

ensure_storage_servers() {
    ensure_python_module moto.server 'moto[server]'
    ensure_python_module boto3 boto3
    ensure_python_module pyftpdlib pyftpdlib
    ensure_python_module asyncssh asyncssh
    command -v ssh >/dev/null 2>&1 || apt_install openssh-client
    command -v ssh >/dev/null 2>&1 || die "ssh (openssh-client) still missing after apt-get install"
    echo "storage servers: ok (moto_server, pyftpdlib, asyncssh; ssh $(ssh -V 2>&1 | cut -d, -f1))"
}

# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------

step "services"
missing=()
mariadb_installed || missing+=(mariadb-server mariadb-client)
pg_installed || missing+=(postgresql postgresql-client)
systemd_analyze_installed || missing+=(systemd)
chromium_installed || missing+=(chromium chromium-driver)
cjk_font_installed || missing+=(fonts-noto-cjk)
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_install "${missing[@]}"
    mariadb_installed || die "MariaDB still not installed after apt-get install"
    pg_installed || die "PostgreSQL still not installed after apt-get install"
    systemd_analyze_installed || die "systemd-analyze still not found after apt-get install systemd"
    chromium_installed || die "chromium or chromedriver still missing after apt-get install chromium chromium-driver"
fi

ensure_mysql
ensure_pg
ensure_python_module aiosmtpd aiosmtpd
ensure_python_module openapi_spec_validator openapi-spec-validator
ensure_python_module schemathesis schemathesis
ensure_python_module openapi_python_client openapi-python-client
ensure_storage_servers

# Scratch databases left by an interrupted earlier run (tests name theirs reportd_t_*).
for db in $(mysql_tcp -N -e "SHOW DATABASES LIKE 'reportd\\_t\\_%'" 2>/dev/null); do
    mysql_tcp -e "DROP DATABASE IF EXISTS \`$db\`" >/dev/null 2>&1 || true
done
for db in $(pg_query "$PG_USER" -d postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'reportd\\_t\\_%'" 2>/dev/null); do
    pg_query "$PG_USER" -d postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
done

export REPORTD_TEST_MYSQL_URL="${REPORTD_TEST_MYSQL_URL:-mysql://root@$MYSQL_HOST:$MYSQL_PORT/test}"
export REPORTD_TEST_PG_URL="${REPORTD_TEST_PG_URL:-postgres://$PG_USER@$PG_HOST:$PG_PORT/test}"

if [[ ${REPORTD_TEST_SERVICES_ONLY:-0} == 1 ]]; then
    echo "REPORTD_TEST_MYSQL_URL=$REPORTD_TEST_MYSQL_URL"
    echo "REPORTD_TEST_PG_URL=$REPORTD_TEST_PG_URL"
    exit 0
fi

# ---------------------------------------------------------------------------
# Rust checks and tests
# ---------------------------------------------------------------------------

if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 || die "cargo fmt/clippy missing and rustup not available"
    rustup component add rustfmt clippy
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

has_lib_target() {
    cargo metadata --no-deps --format-version 1 2>/dev/null |
        grep -Eq '"kind":\[[^]]*"(lib|rlib|dylib|proc-macro)"'
}

if cargo nextest --version >/dev/null 2>&1; then
    nextest_args=(--no-fail-fast)
    if [[ -f .config/nextest.toml ]] && grep -Eq '^[[:space:]]*\[profile\.ci[].]' .config/nextest.toml; then
        nextest_args+=(--profile ci)
    fi
    # Doc tests first, so the run closes on nextest's summary of all the other tests.
    if has_lib_target; then
        step "cargo test --doc"
        cargo test --doc
    else
        step "cargo test --doc (skipped: no library target)"
    fi
    step "cargo nextest run ${nextest_args[*]}"
    cargo nextest run "${nextest_args[@]}"
else
    step "cargo test"
    cargo test
fi

# The REST API fuzzed against its own document (about two minutes; the tests built the binary).
step "scripts/api_fuzz.sh (Schemathesis)"
bash scripts/api_fuzz.sh

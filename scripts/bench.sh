#!/usr/bin/env bash
# Benchmarks for reportd (measurements, not tests: CI never runs them). Four parts, chosen with
# BENCH_ONLY; by default all run: export, scheduler, API, notify, jobs, console.
#
# Export (issue 3). Builds an `orders` table (ROWS rows) in MariaDB and PostgreSQL (database
# `reportd_bench`), then times, each under /usr/bin/time -v (wall clock and peak RSS):
#   reportd-mysql   reportd export of SELECT * FROM orders from MariaDB
#   reportd-pg      the same from PostgreSQL
#   db-read         the database's own read of the same rows: `mariadb --quick --batch` into a
#                   file (what an export cannot beat: the server, the wire and the parsing)
#   reportd-csv     reportd export of SELECT * FROM orders from MariaDB to CSV
#   floor           benches/xlsx_floor.rs: the same rows from memory, rust_xlsxwriter alone
#   python          scripts/bench_reference.py: pymysql server-side cursor -> XlsxWriter
#   reportd-big     reportd export of ROWS_BIG rows from MariaDB (table orders_big)
# and prints a table and the targets of issue 3 (PASS/FAIL).
#
# db-read, reportd-mysql, reportd-csv and floor run side by side (interleaved), BENCH_REPEAT
# times each; the best wall time of each is kept, and the highest peak RSS. The file column
# counts the parts (`_partN`) an export came out in.
#
# Scheduler (issue 4). Needs no database server: a SQLite store and a SQLite `demo` source
# (demo_data) under $BENCH_DIR/sched, one fresh store per case; python3 (standard library)
# runs scripts/bench_scheduler.py. Two cases, each `reportd task apply -f` (timed), then
# `reportd run` in the background:
#   delay   BENCH_SCHED_TASKS tasks, task i firing at second i % 60 of every minute (6-field
#           cron), each a 5-row query; the daemon runs BENCH_SCHED_SECONDS, then SIGTERM. The
#           fire delay, started_at - scheduled_at of the trigger `cron` executions read from
#           the store, of fires scheduled from 1 s after "scheduler started" on: p50/p99/max
#           (nearest rank). RSS and CPU over the run are shown too.
#   idle    BENCH_IDLE_TASKS tasks that fire once a year, six months away (none fires during
#           the case); after "scheduler started" and BENCH_IDLE_SETTLE seconds, RSS (VmRSS,
#           VmHWM from /proc/PID/status) and CPU (utime + stime from /proc/PID/stat) over
#           BENCH_IDLE_SECONDS.
# It prints a table and the targets of issue 4 (PASS/FAIL).
#
# API (issue 13). On each store of BENCH_API_BACKENDS (a SQLite file; MariaDB at
# 127.0.0.1:3306 and PostgreSQL at 127.0.0.1:5432, database `reportd_bench_api`, dropped and
# created by the script, dropped again at the end): a config under $BENCH_DIR/api/<store>
# (http.bind on a free port, http.token `bench-token` used as the admin API token, a SQLite
# `demo` source); `task apply -f` of BENCH_API_TASKS tasks that never fire (1 January), each
# with a DingTalk webhook and secret; `reportd user add bench` (viewer; skipped with a warning
# when the command is missing); BENCH_API_EXECUTIONS rows inserted into `executions` with the
# command-line clients (python's sqlite3 for SQLite), started_at over the last 90 days, 90 %
# success. Then `reportd run` in the background and scripts/bench_api.py (python3, standard
# library) measures, client side, percentiles by nearest rank:
#   RSS       VmRSS of the daemon BENCH_API_SETTLE seconds after start, before any request
#   closed    one keep-alive connection, BENCH_API_REQUESTS requests each (after a warm-up):
#             /health, /api/status (or /status), /api/tasks (default page and ?limit=all),
#             /api/data-sources, /api/logs?limit=50&offset=K with K spread over 0..total (and
#             with status=failed), /api/logs/{id} at random ids
#   mixed     open loop: BENCH_API_RATE requests/s for BENCH_API_SECONDS over BENCH_API_WORKERS
#             connections (tasks 20 %, logs at random offsets 30 %, logs/{id} 25 %, status 15 %,
#             data-sources 10 %); request i is due at start + i/rate and its latency counts from
#             then, so a stall is not hidden (coordinated omission)
#   RSS       again after BENCH_API_SETTLE quiet seconds: the growth with the API in use
#   login     five logins of `bench` with the right password (argon2: the time of one); then
#             two bursts of BENCH_API_BURST wrong-password logins at once (one name, from
#             127.0.0.2; distinct unknown names, from 127.0.0.3): every answer must be 401 or
#             429; the daemon's CPU seconds over the burst, and /health asked every 20 ms during
#             it (max <= 100 ms); RSS once more after them
# An endpoint that answers 404 (not built yet) is reported "endpoint missing", not an error;
# the mixed case then runs on the endpoints that exist. It prints a table per store and the
# targets of issue 13 (PASS/FAIL); the daemon's logs and the reports are in $BENCH_DIR/api/<store>.
# E.g. BENCH_ONLY=api BENCH_REPORTD=target/release/reportd scripts/bench.sh (about 3 minutes a
# store with the defaults).
#
# Notify (issue 15). scripts/bench_notify.py: one task with DingTalk, WeCom, Feishu, a webhook
# (and e-mail when aiosmtpd is installed), each answered by a local server after its own delay
# (0.4, 0.8, 1.2, 1.6 s); `task run` timed with and without --no-notify (median of 5): the
# notification time against the slowest channel (target: at most slowest + 0.5 s) and the sum.
# Work dir $BENCH_DIR/notify. About 20 s.
#
# Jobs (issue 16). scripts/bench_jobs.py on $DB.orders (ROWS rows, MariaDB; built as for the
# export part, orders_big skipped): fairness (a 100-row job while three ROWS-row jobs run,
# target <= 3 s), memory (ten ROWS-row xlsx jobs at once, peak RSS <= 200 MB), cancel (query
# gone from the process list <= 2 s) and throughput (4 jobs at once vs back to back on 2
# workers, <= 1.2x). BENCH_JOBS_CASES picks cases. Work dir $BENCH_DIR/jobs. About 3 minutes.
#
# Console (issue 14). A SQLite store seeded as for the API part (BENCH_API_TASKS tasks,
# BENCH_API_EXECUTIONS executions; work dir $BENCH_DIR/console), an admin `bench-admin`, then
# `reportd run` and scripts/bench_console.py: logged in through the API, every console page
# (/, /tasks, /tasks?q=, /tasks/{id}, /tasks/{id}/edit, /logs, /logs?status=failed, /exports,
# /data-sources, /users, /audit) BENCH_CONSOLE_REQUESTS times on one keep-alive connection:
# client time and Server-Timing p50/p99 (target p99 <= 50 ms); each page's weight with its
# assets (target <= 300 KB for the heaviest); the daemon's idle RSS before and after (growth
# <= 10 MB). E.g. BENCH_ONLY=console BENCH_REPORTD=target/release/reportd scripts/bench.sh.
#
# Herd (issue 33). BENCH_HERD_TASKS tasks (default 1000) fire at one instant on one daemon
# (SQLite store, scheduler.max_workers BENCH_HERD_WORKERS=10), each a 20-row query to CSV, half
# on MariaDB, half on PostgreSQL (each source max_connections BENCH_HERD_CONNECTIONS=5); the
# time from the fire until the last run finished (target <= 3 s) and the runs skipped (target
# 0), read from the store. Then BENCH_HERD_WARM tasks fire one a second on the warm pools: the
# p50 of their overhead (fire -> first query sent; last row -> record written) from the
# daemon's /metrics histograms (the bound of the bucket holding the median; target <= 20 ms).
# BENCH_HERD_STORE_CONNECTIONS sets system_database.max_connections (empty: the default).
# Needs python3 (standard library; scripts/bench_herd.py). About 90 s.
# E.g. BENCH_ONLY=herd BENCH_REPORTD=target/release/reportd scripts/bench.sh.
#
# Split (issue 28). On $DB.orders (ROWS rows x 11 columns, built as for the export part) in
# MariaDB and PostgreSQL: `reportd export` of `SELECT * FROM orders WHERE 1=1 ORDER BY id` (one
# reader) against the same query with `WHERE {split}` and --split-column id --readers N
# --chunk-rows BENCH_SPLIT_CHUNK for each N of BENCH_SPLIT_READERS, to CSV and xlsx; runs
# alternate (single, 1, 2, 4, 8, single, ...) BENCH_SPLIT_REPEAT times; best wall time and
# highest peak RSS kept. Every split file is compared with the single reader's (cmp for CSV).
# Targets: CSV with 4 readers <= 0.80 x single on both backends; xlsx no slower (<= 1.05 x);
# peak RSS <= 64 MB with 4 readers. E.g. BENCH_ONLY=split ROWS=200000 BENCH_SPLIT_REPEAT=1
# BENCH_REPORTD=target/release/reportd scripts/bench.sh (a quick try).
#
# Storage (issue 30). A SQLite `big` table of BENCH_STORAGE_MB MB of CSV, a moto_server (S3,
# tests/stand_ins/storage.py) on 127.0.0.1, and one task exporting the table as CSV, run twice
# under /usr/bin/time -v: without `deliver`, then with `deliver: [s3]`. The upload's time (from
# the run's log: "delivering to storage" to "file delivered") is compared with a copy of the same file on the
# same disk (dd, fsynced); peak RSS is the delivering run's (export and upload). Targets:
# upload <= 1.3x the copy, RSS <= 64 MB. moto_server (Python) is the upload's bottleneck here. E.g. BENCH_ONLY=storage BENCH_REPORTD=target/debug/reportd scripts/bench.sh.
#   BENCH_STORAGE_MB=200   size of the report
#
# All parts exit 0 whatever the figures.
#
# Environment:
#   BENCH_ONLY=            export | scheduler | api | notify | jobs | console | herd | split | storage; empty (the default) runs all nine
# Split part:
#   BENCH_SPLIT_READERS="1 2 4 8"   reader counts compared with the single reader
#   BENCH_SPLIT_CHUNK=100000        --chunk-rows
#   BENCH_SPLIT_REPEAT=3            alternating runs of every case (best kept)
#   BENCH_SPLIT_FORMATS="csv xlsx"  formats
#   BENCH_DIR=/tmp/reportd-bench   work dir: venv, config, outputs, logs; scheduler in sched/
#   BENCH_REPORTD=PATH     use this reportd binary instead of building
#                          ${CARGO_TARGET_DIR:-target}/release/reportd
# Export part:
#   ROWS=1000000           rows of `orders`
#   ROWS_BIG=3000000       rows of `orders_big` for the flat-memory check (0: skip)
#   BENCH_REPEAT=2         runs of reportd-mysql and floor (best kept)
#   BENCH_SKIP_REPORTD=1   skip the reportd cases (also skipped, with a warning, when the
#                          binary has no `export` command yet)
#   BENCH_SKIP_PYTHON=1    skip the Python reference (it takes minutes)
#   BENCH_MAX_FILE_SIZE=4GB   export.max_file_size in the generated config: one file per
#                          export, like the floor (with 100MB, the default, an export splits
#                          only where its compressed size passes 97 MB; from 512MB up, xlsx
#                          parts carry ZIP64 records)
#   BENCH_REBUILD=1        rebuild the tables even when they are up to date
#   BENCH_ZIP_LEVEL=3      deflate level (1-9) of the floor and reportd's export.compression_level
#                          (one setting: deflate is most of the floor's time, so both must
#                          compress alike)
# Scheduler part:
#   BENCH_SCHED_TASKS=1000     tasks of the delay case (0: skip the case)
#   BENCH_SCHED_SECONDS=130    how long the daemon runs in the delay case
#   BENCH_SCHED_WORKERS=10     scheduler.max_workers
#   BENCH_SCHED_FORMAT=csv     output format of the tasks (csv | xlsx); csv keeps each run
#                              short, so the figure is the scheduler's more than the writer's
#   BENCH_IDLE_TASKS=10000     tasks of the idle case (0: skip the case)
#   BENCH_IDLE_SETTLE=10       seconds between "scheduler started" and the idle sampling
#   BENCH_IDLE_SECONDS=60      length of the idle sampling
#   BENCH_START_TIMEOUT=300    seconds to wait for "scheduler started" in the daemon's log
#                              (the API part too)
# API part:
#   BENCH_API_BACKENDS="sqlite mysql postgres"   stores to measure, in this order
#   BENCH_API_TASKS=1000       tasks in the store
#   BENCH_API_EXECUTIONS=100000   execution rows in the store
#   BENCH_API_REQUESTS=300     requests per closed-loop case
#   BENCH_API_RATE=200         requests/s of the mixed case
#   BENCH_API_SECONDS=30       length of the mixed case
#   BENCH_API_WORKERS=50       connections of the mixed case (the most requests in flight)
#   BENCH_API_SETTLE=10        quiet seconds before each RSS sample
#   BENCH_API_BURST=50         wrong-password logins per burst
#   BENCH_API_KEEP=1           keep the databases `reportd_bench_api` afterwards
#
# Tables are rebuilt only when missing or built for another row count or data version.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$PWD

ROWS=${ROWS:-1000000}
ROWS_BIG=${ROWS_BIG:-3000000}
BENCH_DIR=${BENCH_DIR:-/tmp/reportd-bench}
BENCH_REPEAT=${BENCH_REPEAT:-2}
BENCH_SKIP_REPORTD=${BENCH_SKIP_REPORTD:-0}
BENCH_SKIP_PYTHON=${BENCH_SKIP_PYTHON:-0}
BENCH_MAX_FILE_SIZE=${BENCH_MAX_FILE_SIZE:-4GB}
BENCH_REBUILD=${BENCH_REBUILD:-0}
BENCH_ZIP_LEVEL=${BENCH_ZIP_LEVEL:-3}
BENCH_ONLY=${BENCH_ONLY:-}
BENCH_SPLIT_READERS=${BENCH_SPLIT_READERS:-1 2 4 8}
BENCH_SPLIT_CHUNK=${BENCH_SPLIT_CHUNK:-100000}
BENCH_SPLIT_REPEAT=${BENCH_SPLIT_REPEAT:-3}
BENCH_SPLIT_FORMATS=${BENCH_SPLIT_FORMATS:-csv xlsx}
BENCH_SCHED_TASKS=${BENCH_SCHED_TASKS:-1000}
BENCH_SCHED_SECONDS=${BENCH_SCHED_SECONDS:-130}
BENCH_SCHED_WORKERS=${BENCH_SCHED_WORKERS:-10}
BENCH_SCHED_FORMAT=${BENCH_SCHED_FORMAT:-csv}
BENCH_IDLE_TASKS=${BENCH_IDLE_TASKS:-10000}
BENCH_IDLE_SETTLE=${BENCH_IDLE_SETTLE:-10}
BENCH_IDLE_SECONDS=${BENCH_IDLE_SECONDS:-60}
BENCH_START_TIMEOUT=${BENCH_START_TIMEOUT:-300}
BENCH_API_BACKENDS=${BENCH_API_BACKENDS:-sqlite mysql postgres}
BENCH_API_TASKS=${BENCH_API_TASKS:-1000}
BENCH_API_EXECUTIONS=${BENCH_API_EXECUTIONS:-100000}
BENCH_API_REQUESTS=${BENCH_API_REQUESTS:-300}
BENCH_API_RATE=${BENCH_API_RATE:-200}
BENCH_API_SECONDS=${BENCH_API_SECONDS:-30}
BENCH_API_WORKERS=${BENCH_API_WORKERS:-50}
BENCH_API_SETTLE=${BENCH_API_SETTLE:-10}
BENCH_API_BURST=${BENCH_API_BURST:-50}
BENCH_API_KEEP=${BENCH_API_KEEP:-0}

DB=reportd_bench
MYSQL_HOST=127.0.0.1 MYSQL_PORT=3306 MYSQL_USER=root
PG_HOST=127.0.0.1 PG_PORT=5432 PG_USER=postgres
# Bump when the generated data changes, so old tables are rebuilt.
DATA_VERSION=1

# Targets (issue 3).
TARGET_FLOOR_RATIO=1.10 # reportd-mysql wall / floor wall, at most
TARGET_PYTHON_RATIO=10  # python wall / reportd-mysql wall, at least
TARGET_RSS_MB=64        # reportd peak RSS at ROWS and ROWS_BIG, at most
TARGET_DB_XLSX_RATIO=2.0 # reportd-mysql (xlsx) wall / db-read wall, at most (issue 32)
TARGET_DB_CSV_RATIO=1.1  # reportd-csv wall / db-read wall, at most (issue 32)
# Targets (issue 4).
TARGET_DELAY_P99_MS=20  # fire delay p99 with BENCH_SCHED_TASKS tasks, at most
TARGET_IDLE_RSS_MB=50   # daemon RSS with BENCH_IDLE_TASKS tasks, below
TARGET_IDLE_CPU_PCT=1   # daemon CPU between fires with BENCH_IDLE_TASKS tasks, below

LOGS=$BENCH_DIR/logs
OUT=$BENCH_DIR/out
CONFIG=$BENCH_DIR/config.yaml
REPORTD=${BENCH_REPORTD:-${CARGO_TARGET_DIR:-$REPO/target}/release/reportd}
SCHED=$BENCH_DIR/sched
FLOOR=""       # set by build_floor
LOAD_BEFORE="" # set by run_cases

die() {
    echo "error: $*" >&2
    exit 1
}
step() { echo "==> $*"; }
warn() { echo "warning: $*" >&2; }

[[ $BENCH_ONLY =~ ^(|export|scheduler|api|notify|jobs|console|herd|split|storage)$ ]] || die "BENCH_ONLY must be export, scheduler, api, notify, jobs, console, herd, split, storage or empty, got '$BENCH_ONLY'"
want() { [[ -z $BENCH_ONLY || $BENCH_ONLY == "$1" ]]; }
if want export; then
    [[ $ROWS =~ ^[1-9][0-9]*$ ]] || die "ROWS must be a positive integer, got '$ROWS'"
    [[ $ROWS_BIG =~ ^[0-9]+$ ]] || die "ROWS_BIG must be an integer (0 to skip), got '$ROWS_BIG'"
    [[ $BENCH_REPEAT =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEAT must be a positive integer"
    [[ -z $BENCH_ZIP_LEVEL || $BENCH_ZIP_LEVEL =~ ^[1-9]$ ]] || die "BENCH_ZIP_LEVEL must be 1 to 9"
    [[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed: apt-get install time"
fi
if want scheduler; then
    for v in BENCH_SCHED_TASKS BENCH_IDLE_TASKS; do
        [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be an integer (0 to skip the case), got '${!v}'"
    done
    for v in BENCH_SCHED_SECONDS BENCH_SCHED_WORKERS BENCH_IDLE_SECONDS BENCH_START_TIMEOUT; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
    done
    [[ $BENCH_IDLE_SETTLE =~ ^[0-9]+$ ]] || die "BENCH_IDLE_SETTLE must be an integer, got '$BENCH_IDLE_SETTLE'"
    [[ $BENCH_SCHED_FORMAT =~ ^(csv|xlsx)$ ]] || die "BENCH_SCHED_FORMAT must be csv or xlsx"
    [[ -r /proc/self/stat ]] || die "the scheduler benchmark reads /proc (Linux)"
    command -v python3 >/dev/null || die "python3 is needed"
fi

# ---------------------------------------------------------------------------
# Setup: services, Python venv, builds, config
# ---------------------------------------------------------------------------

ensure_services() {
    step "services (scripts/test.sh, services only)"
    REPORTD_TEST_SERVICES_ONLY=1 bash "$REPO/scripts/test.sh" >"$LOGS/services.log" 2>&1 ||
        { cat "$LOGS/services.log" >&2; die "database services are not available"; }
    grep -E '^(mariadb|postgres):' "$LOGS/services.log" | sed 's/^/    /'
}

ensure_venv() {
    local venv=$BENCH_DIR/venv
    PYTHON=$venv/bin/python
    if [[ -x $PYTHON ]] && "$PYTHON" -c 'import pymysql, xlsxwriter' 2>/dev/null; then
        return
    fi
    step "python venv ($venv)"
    python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check pymysql xlsxwriter >"$LOGS/pip.log" 2>&1 ||
        { tail -n 20 "$LOGS/pip.log" >&2; die "pip install failed"; }
}

build_reportd() {
    step "cargo build --release"
    cargo build --release >"$LOGS/build.log" 2>&1 && [[ -x $REPORTD ]] ||
        { tail -n 30 "$LOGS/build.log" >&2; die "cargo build --release failed (log: $LOGS/build.log)"; }
}

# The floor is a bench target (harness = false); cargo builds it with `bench --no-run` in the
# bench profile (= release). Its file name carries a hash: take it from cargo's JSON messages.
build_floor() {
    step "cargo bench --bench xlsx_floor --no-run"
    FLOOR=$(cargo bench --bench xlsx_floor --no-run --message-format=json 2>"$LOGS/floor-build.log" |
        python3 -c '
import json, sys
exe = ""
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "xlsx_floor" and m.get("executable"):
        exe = m["executable"]
print(exe)
') || true
    [[ -n $FLOOR && -x $FLOOR ]] ||
        { tail -n 30 "$LOGS/floor-build.log" >&2; die "building the floor failed (it links the reportd library: does src/ compile?)"; }
    echo "    $FLOOR"
}

# Decide whether the reportd cases run: asked to skip, or no `export` command (yet).
HAVE_REPORTD=0
check_reportd() {
    if [[ $BENCH_SKIP_REPORTD == 1 ]]; then
        warn "BENCH_SKIP_REPORTD=1: reportd cases skipped"
        return
    fi
    if [[ -n ${BENCH_REPORTD:-} ]]; then
        [[ -x $REPORTD ]] || die "BENCH_REPORTD=$REPORTD is not an executable"
    else
        build_reportd
    fi
    if "$REPORTD" export --help >/dev/null 2>&1; then
        HAVE_REPORTD=1
    else
        warn "'reportd export' is not available in this build: reportd cases skipped"
    fi
}

write_config() {
    mkdir -p "$BENCH_DIR/temp" "$BENCH_DIR/exports"
    cat >"$CONFIG" <<EOF
# Generated by scripts/bench.sh: the benchmark's data sources only.
data_sources:
  bench_mysql:
    type: mysql
    url: mysql://$MYSQL_USER@$MYSQL_HOST:$MYSQL_PORT/$DB
    max_connections: 16
  bench_pg:
    type: postgresql
    url: postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB
    max_connections: 16
export:
  temp_dir: $BENCH_DIR/temp
  output_dir: $BENCH_DIR/exports
  max_file_size: $BENCH_MAX_FILE_SIZE
  compression_level: ${BENCH_ZIP_LEVEL:-3}
logging:
  file: $LOGS/reportd.log
EOF
}

# ---------------------------------------------------------------------------
# Data: the same rows as benches/xlsx_floor.rs, derived from the row number i
# ---------------------------------------------------------------------------

# Value lists, in the same order as the arrays in benches/xlsx_floor.rs.
SURNAMES=(王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 欧阳)
GIVEN_NAMES=(伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英)
CITIES=(北京 上海 广州 深圳 杭州 成都 武汉 南京 西安 重庆 天津 苏州 长沙 郑州 青岛 哈尔滨)
STATUSES=(pending paid shipped completed cancelled refunded)
NOTES=("请尽快发货" "客户要求开具增值税专用发票" "周末送货，工作日无人签收" "礼品包装，不要放价格单"
    "联系电话已变更，请以备注为准" "老客户，优先处理" "地址偏远，需要转运" "=1+1 不是公式")

sql_list() { # 'a','b',... (values have no quotes)
    local out="" v
    for v in "$@"; do out+="${out:+,}'$v'"; done
    echo "$out"
}
my_pick() { local expr=$1; shift; echo "ELT(1 + ($expr), $(sql_list "$@"))"; }
pg_pick() { local expr=$1; shift; echo "(ARRAY[$(sql_list "$@")])[1 + ($expr)]"; }

COLUMNS_DDL_MY="id BIGINT NOT NULL PRIMARY KEY,
  order_no VARCHAR(32) NOT NULL, customer VARCHAR(32) NOT NULL, city VARCHAR(16) NOT NULL,
  qty INT NOT NULL, amount DECIMAL(12,2) NOT NULL, ratio DOUBLE NOT NULL,
  status VARCHAR(16) NOT NULL, created_at DATETIME NOT NULL, paid_at DATETIME NULL, note TEXT NULL"
COLUMNS_DDL_PG="id BIGINT NOT NULL,
  order_no VARCHAR(32) NOT NULL, customer VARCHAR(32) NOT NULL, city VARCHAR(16) NOT NULL,
  qty INT NOT NULL, amount DECIMAL(12,2) NOT NULL, ratio DOUBLE PRECISION NOT NULL,
  status VARCHAR(16) NOT NULL, created_at TIMESTAMP NOT NULL, paid_at TIMESTAMP NULL, note TEXT NULL"

mysql_q() { # database, args...
    local db=$1
    shift
    mariadb --no-defaults --protocol=TCP -h"$MYSQL_HOST" -P"$MYSQL_PORT" -u"$MYSQL_USER" \
        --default-character-set=utf8mb4 -N -B ${db:+"-D$db"} "$@"
}
pg_q() { # database, args...
    local db=$1
    shift
    PGOPTIONS='-c client_min_messages=warning' psql -X -w -q -At -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$db" -v ON_ERROR_STOP=1 "$@"
}

# INSERT ... SELECT from MariaDB's Sequence engine (seq_1_to_N), in one statement.
mysql_fill_sql() { # table, rows
    local t=$1 n=$2
    cat <<EOF
INSERT INTO \`$t\`
SELECT i,
  CONCAT('SO', DATE_FORMAT(c, '%Y%m%d'), LPAD(i % 1000000, 6, '0')),
  CONCAT($(my_pick "i % 20" "${SURNAMES[@]}"), $(my_pick "(i DIV 20) % 23" "${GIVEN_NAMES[@]}")),
  $(my_pick "(i * 7) % 16" "${CITIES[@]}"),
  (i * 13) % 97 + 1,
  ((i * 4099) % 1000000) / 100,
  ((i * 7919) % 10007) / 10007e0,
  $(my_pick "(i DIV 7) % 6" "${STATUSES[@]}"),
  c,
  IF(i % 5 = 0, NULL, c + INTERVAL ((i * 13) % 172800 + 60) SECOND),
  IF(i % 2 = 0, NULL, CONCAT($(my_pick "(i DIV 2) % 8" "${NOTES[@]}"), ' #', i))
FROM (SELECT seq AS i, TIMESTAMP'2025-01-01 00:00:00' + INTERVAL ((seq * 7919) % 31536000) SECOND AS c
      FROM seq_1_to_$n) AS s;
EOF
}

# INSERT ... SELECT FROM generate_series; the primary key is added after the fill (faster).
pg_fill_sql() { # table, rows
    local t=$1 n=$2
    cat <<EOF
INSERT INTO "$t"
SELECT i,
  'SO' || to_char(c, 'YYYYMMDD') || lpad((i % 1000000)::text, 6, '0'),
  $(pg_pick "i % 20" "${SURNAMES[@]}") || $(pg_pick "(i / 20) % 23" "${GIVEN_NAMES[@]}"),
  $(pg_pick "(i * 7) % 16" "${CITIES[@]}"),
  (i * 13) % 97 + 1,
  ((i * 4099) % 1000000)::numeric / 100,
  ((i * 7919) % 10007)::float8 / 10007,
  $(pg_pick "(i / 7) % 6" "${STATUSES[@]}"),
  c,
  CASE WHEN i % 5 = 0 THEN NULL ELSE c + ((i * 13) % 172800 + 60) * INTERVAL '1 second' END,
  CASE WHEN i % 2 = 0 THEN NULL ELSE $(pg_pick "(i / 2) % 8" "${NOTES[@]}") || ' #' || i END
FROM (SELECT i, TIMESTAMP '2025-01-01 00:00:00' + ((i * 7919) % 31536000) * INTERVAL '1 second' AS c
      FROM generate_series(1::bigint, $n) AS g(i)) AS s;
EOF
}

# A table is up to date when its comment (set after a complete fill) names this version and
# row count.
table_tag() { echo "reportd-bench v$DATA_VERSION rows=$1"; }

mysql_table() { # table, rows
    local t=$1 n=$2 tag have
    tag=$(table_tag "$n")
    have=$(mysql_q "" -e "SELECT table_comment FROM information_schema.tables
        WHERE table_schema = '$DB' AND table_name = '$t'")
    if [[ $BENCH_REBUILD != 1 && $have == "$tag" ]]; then
        echo "    mariadb $DB.$t: $n rows (kept)"
        return
    fi
    local start=$SECONDS
    {
        echo "DROP TABLE IF EXISTS \`$t\`;"
        echo "CREATE TABLE \`$t\` ($COLUMNS_DDL_MY) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='filling';"
        mysql_fill_sql "$t" "$n"
        echo "ALTER TABLE \`$t\` COMMENT='$tag';"
        echo "ANALYZE TABLE \`$t\`;"
    } | mysql_q "$DB" >/dev/null
    echo "    mariadb $DB.$t: $n rows (built in $((SECONDS - start))s)"
}

pg_table() { # table, rows
    local t=$1 n=$2 tag have
    tag=$(table_tag "$n")
    have=$(pg_q "$DB" -c "SELECT obj_description(to_regclass('public.\"$t\"'), 'pg_class')")
    if [[ $BENCH_REBUILD != 1 && $have == "$tag" ]]; then
        echo "    postgres $DB.$t: $n rows (kept)"
        return
    fi
    local start=$SECONDS
    {
        echo "DROP TABLE IF EXISTS \"$t\";"
        echo "CREATE TABLE \"$t\" ($COLUMNS_DDL_PG);"
        pg_fill_sql "$t" "$n"
        echo "ALTER TABLE \"$t\" ADD PRIMARY KEY (id);"
        echo "COMMENT ON TABLE \"$t\" IS '$tag';"
    } | pg_q "$DB" >/dev/null
    # Set hint bits and the visibility map now, so the first timed scan does not write.
    pg_q "$DB" -c "VACUUM (FREEZE, ANALYZE) \"$t\"" >/dev/null
    echo "    postgres $DB.$t: $n rows (built in $((SECONDS - start))s)"
}

build_tables() {
    local big=""
    ((ROWS_BIG > 0)) && big=", $DB.orders_big: $ROWS_BIG rows (MariaDB only)"
    step "tables ($DB.orders: $ROWS rows$big)"
    mysql_q "" -e "CREATE DATABASE IF NOT EXISTS \`$DB\` CHARACTER SET utf8mb4"
    if [[ -z $(pg_q postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'") ]]; then
        pg_q postgres -c "CREATE DATABASE $DB ENCODING 'UTF8' TEMPLATE template0" >/dev/null
    fi
    mysql_table orders "$ROWS"
    pg_table orders "$ROWS"
    if ((ROWS_BIG > 0)); then
        mysql_table orders_big "$ROWS_BIG"
    fi
}

# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

# Results by case name.
declare -A R_ROWS R_WALL R_RSS R_SIZE R_FILES R_STATUS R_RUNS
CASES=() # in order of first run

# Size in MB of an output file and its _partN siblings, if any.
output_mb() {
    local files=()
    [[ -f $1 ]] && files+=("$1")
    mapfile -t -O "${#files[@]}" files < <(compgen -G "${1%.*}_part*.${1##*.}" || true)
    ((${#files[@]})) || { echo "? ?"; return; }
    du -cb --apparent-size "${files[@]}" | awk -v n="${#files[@]}" 'END { printf "%.1f %d\n", $1 / 1048576, n }'
}

# time_case CASE ROWS OUTPUT -- COMMAND...
# Runs COMMAND under /usr/bin/time -v; keeps the best wall time and the highest peak RSS of
# all runs of CASE. OUTPUT (and its _partN siblings) is removed before and measured after.
time_case() {
    local name=$1 rows=$2 out=$3
    shift 4
    local run=$((${R_RUNS[$name]:-0} + 1))
    local log=$LOGS/$name.$run.log tv=$LOGS/$name.$run.time
    [[ -n ${R_RUNS[$name]:-} ]] || CASES+=("$name")
    R_RUNS[$name]=$run
    R_ROWS[$name]=$rows
    rm -f "$out" "${out%.*}"_part*."${out##*.}"
    echo "    $name (run $run): $(printf '%q ' "$@")" | cut -c1-200

    local rc=0
    /usr/bin/time -v -o "$tv" "$@" >"$log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        warn "$name failed (exit $rc); last lines of $log:"
        tail -n 5 "$log" | sed 's/^/      /' >&2
        R_STATUS[$name]="failed"
        return 0
    fi

    local wall rss size files
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.35"
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        printf "%.2f", s }' "$tv")
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$tv")
    read -r size files < <(output_mb "$out")
    echo "      wall ${wall}s, peak RSS ${rss} MB, file ${size:-?} MB in ${files:-?} file(s)"

    R_STATUS[$name]=${R_STATUS[$name]:-ok}
    if [[ -z ${R_WALL[$name]:-} ]] || awk -v a="$wall" -v b="${R_WALL[$name]}" 'BEGIN { exit !(a < b) }'; then
        R_WALL[$name]=$wall
    fi
    if [[ -z ${R_RSS[$name]:-} ]] || awk -v a="$rss" -v b="${R_RSS[$name]}" 'BEGIN { exit !(a > b) }'; then
        R_RSS[$name]=$rss
    fi
    R_SIZE[$name]=$size
    R_FILES[$name]=${files:-?}
}

reportd_export() { # CASE ROWS SOURCE SQL
    local out=$OUT/$1.xlsx
    time_case "$1" "$2" "$out" -- "$REPORTD" --config "$CONFIG" export --source "$3" --sql "$4" -o "$out"
}
reportd_csv() { # CASE ROWS SOURCE SQL
    local out=$OUT/$1.csv
    time_case "$1" "$2" "$out" -- "$REPORTD" --config "$CONFIG" export --source "$3" --sql "$4" -o "$out"
}
db_read() { # CASE ROWS TABLE
    local out=$OUT/$1.tsv
    time_case "$1" "$2" "$out" -- bash -c 'mariadb --no-defaults --protocol=TCP -h"$1" -P"$2" -u"$3" \
        --default-character-set=utf8mb4 --quick --batch -D"$4" -e "SELECT * FROM $5" >"$6"' \
        db-read "$MYSQL_HOST" "$MYSQL_PORT" "$MYSQL_USER" "$DB" "$3" "$out"
}
floor_run() { # CASE ROWS
    local out=$OUT/$1.xlsx
    time_case "$1" "$2" "$out" -- "$FLOOR" "$2" "$out" ${BENCH_ZIP_LEVEL:+"$BENCH_ZIP_LEVEL"}
}

run_cases() {
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    step "timing (db-read, reportd-mysql, reportd-csv and floor interleaved, $BENCH_REPEAT run(s) each, best kept)"
    local i
    for ((i = 1; i <= BENCH_REPEAT; i++)); do
        db_read db-read "$ROWS" orders
        if ((HAVE_REPORTD)); then
            reportd_export reportd-mysql "$ROWS" bench_mysql "SELECT * FROM orders"
            reportd_csv reportd-csv "$ROWS" bench_mysql "SELECT * FROM orders"
        fi
        floor_run floor "$ROWS"
    done
    if ((HAVE_REPORTD)); then
        reportd_export reportd-pg "$ROWS" bench_pg "SELECT * FROM orders"
    fi
    if [[ $BENCH_SKIP_PYTHON != 1 ]]; then
        time_case python "$ROWS" "$OUT/python.xlsx" -- "$PYTHON" "$REPO/scripts/bench_reference.py" \
            --host "$MYSQL_HOST" --port "$MYSQL_PORT" --user "$MYSQL_USER" --database "$DB" \
            --table orders -o "$OUT/python.xlsx"
    fi
    if ((ROWS_BIG > 0)); then
        if ((HAVE_REPORTD)); then
            reportd_export reportd-big "$ROWS_BIG" bench_mysql "SELECT * FROM orders_big"
        else
            # Not a target, but shows the floor's memory is flat too.
            floor_run floor-big "$ROWS_BIG"
        fi
    fi
}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

ok() { [[ ${R_STATUS[$1]:-} == ok ]]; }

# verdict LABEL VALUE OP TARGET  (OP: le | ge | lt); VALUE empty -> n/a
verdict() {
    local label=$1 value=$2 op=$3 target=$4 sign mark
    case $op in le) sign="<=" ;; ge) sign=">=" ;; *) sign="<" ;; esac
    if [[ -z $value ]]; then
        printf '  %-34s %10s   target %s %-6s %s\n' "$label" "n/a" "$sign" "$target" "(not measured)"
        return
    fi
    if awk -v v="$value" -v t="$target" -v op="$op" 'BEGIN { exit !(op == "le" ? v <= t : op == "ge" ? v >= t : v < t) }'; then
        mark=PASS
    else
        mark=FAIL
    fi
    printf '  %-34s %10s   target %s %-6s %s\n' "$label" "$value" "$sign" "$target" "$mark"
}

ratio() { # a / b, both cases ok, else empty
    ok "$1" && ok "$2" || return 0
    awk -v a="${R_WALL[$1]}" -v b="${R_WALL[$2]}" 'BEGIN { if (b > 0) printf "%.2f", a / b }'
}

report() {
    echo
    echo "reportd export benchmark: $(nproc) cores, $(mariadb --version | grep -o '[0-9.]*-MariaDB' || true)," \
        "PostgreSQL $(psql --version | awk '{ print $3 }'), $(date '+%Y-%m-%d %H:%M')"
    echo "wall = best of the runs, RSS = highest of the runs (/usr/bin/time -v); logs in $LOGS"
    echo "load average before timing: $LOAD_BEFORE (other work on the machine skews the figures)"
    echo "deflate level (floor and reportd's export.compression_level): ${BENCH_ZIP_LEVEL:-3};" \
        "compression threads: 1 (rust_xlsxwriter deflates the workbook on one thread when it is saved);" \
        "export.max_file_size: $BENCH_MAX_FILE_SIZE"
    echo
    printf '  %-14s %9s %5s %9s %10s %9s %8s %5s\n' case rows runs "wall s" "rows/s" "RSS MB" "file MB" files
    printf '  %-14s %9s %5s %9s %10s %9s %8s %5s\n' -------------- --------- ----- --------- ---------- --------- -------- -----
    local c
    for c in "${CASES[@]}"; do
        if ok "$c"; then
            printf '  %-14s %9s %5s %9s %10s %9s %8s %5s\n' "$c" "${R_ROWS[$c]}" "${R_RUNS[$c]}" "${R_WALL[$c]}" \
                "$(awk -v r="${R_ROWS[$c]}" -v w="${R_WALL[$c]}" 'BEGIN { printf "%.0f", (w > 0 ? r / w : 0) }')" \
                "${R_RSS[$c]}" "${R_SIZE[$c]}" "${R_FILES[$c]}"
        else
            printf '  %-14s %9s %5s %9s\n' "$c" "${R_ROWS[$c]}" "${R_RUNS[$c]}" "FAILED"
        fi
    done
    ((HAVE_REPORTD)) || echo "  (reportd cases skipped)"
    echo
    echo "targets:"
    verdict "reportd-mysql / floor (wall)" "$(ratio reportd-mysql floor)" le "$TARGET_FLOOR_RATIO"
    verdict "reportd-mysql (xlsx) / db-read" "$(ratio reportd-mysql db-read)" le "$TARGET_DB_XLSX_RATIO"
    verdict "reportd-csv / db-read" "$(ratio reportd-csv db-read)" le "$TARGET_DB_CSV_RATIO"
    verdict "python / reportd-mysql (wall)" "$(ratio python reportd-mysql)" ge "$TARGET_PYTHON_RATIO"
    verdict "reportd-mysql peak RSS MB ($ROWS)" "$(ok reportd-mysql && echo "${R_RSS[reportd-mysql]}")" \
        le "$TARGET_RSS_MB"
    if ((ROWS_BIG > 0)); then
        verdict "reportd-big peak RSS MB ($ROWS_BIG)" "$(ok reportd-big && echo "${R_RSS[reportd-big]}")" \
            le "$TARGET_RSS_MB"
    fi
    # A fast export of too little is no win: the files hold the same rows, so sizes must agree.
    local c
    for c in reportd-mysql reportd-pg; do
        if ok "$c" && ok floor && awk -v a="${R_SIZE[$c]}" -v b="${R_SIZE[floor]}" \
            'BEGIN { exit !(a + 0 < 0.8 * b) }'; then
            echo "  WARNING: $c wrote ${R_SIZE[$c]} MB, the floor ${R_SIZE[floor]} MB: are all rows there?"
        fi
    done
    local pf
    pf=$(ratio python floor)
    [[ -n $pf ]] && echo "  (for reference: python / floor = $pf, the most reportd could reach)"
    return 0
}

# ---------------------------------------------------------------------------
# Scheduler (issue 4)
# ---------------------------------------------------------------------------

# Results by "case.key": from scripts/bench_scheduler.py (key=value lines) and the steps below.
declare -A S
DAEMON_PID=""     # the `reportd run` in the background, if any
SCHED_LOAD_BEFORE=""

sched_py() { python3 "$REPO/scripts/bench_scheduler.py" "$@"; }

# kv_into CASE TEXT: key=value lines into S[CASE.key].
kv_into() {
    local c=$1 k v
    while IFS='=' read -r k v; do
        [[ -n $k ]] && S[$c.$k]=$v
    done <<<"$2"
}

now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# Never leave a daemon behind (error, Ctrl-C).
stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    local pid=$DAEMON_PID rc=0
    DAEMON_PID=""
    kill -TERM "$pid" 2>/dev/null || return 0
    wait "$pid" || rc=$?
    ((rc == 0)) || warn "reportd run (pid $pid) exited with status $rc"
}
trap stop_daemon EXIT

ensure_reportd() {
    if [[ -n ${BENCH_REPORTD:-} ]]; then
        [[ -x $REPORTD ]] || die "BENCH_REPORTD=$REPORTD is not an executable"
    else
        build_reportd
    fi
    "$REPORTD" run --help >/dev/null 2>&1 || die "'reportd run' is not available in $REPORTD"
}

# sched_setup CASE: a fresh directory with its config (own store, shared demo source).
sched_setup() {
    local dir=$SCHED/$1
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/config.yaml" <<YAML
# Generated by scripts/bench.sh (scheduler, case $1).
system_database:
  type: sqlite
  sqlite_path: $dir/system.db
data_sources:
  demo:
    type: sqlite
    database: $SCHED/demo.db
    demo_data: true
export:
  temp_dir: $dir/temp
  output_dir: $dir/exports
logging:
  level: INFO
  file: $dir/reportd.log
scheduler:
  max_workers: $BENCH_SCHED_WORKERS
daemon:
  pid_file: $dir/reportd.pid
  shutdown_timeout: 10
http:
  bind: 127.0.0.1:0
YAML
    # Creates the demo source once, before any run can race to create it.
    "$REPORTD" --config "$dir/config.yaml" datasource test demo >"$dir/datasource-test.log" 2>&1 ||
        { cat "$dir/datasource-test.log" >&2; die "the demo data source does not work"; }
}

# sched_apply CASE KIND COUNT: generate the task file, apply it, time the apply.
sched_apply() {
    local c=$1 dir=$SCHED/$1 t0
    sched_py tasks --kind "$2" --count "$3" --source demo --format "$BENCH_SCHED_FORMAT" -o "$dir/tasks.yaml"
    echo "    task apply -f tasks.yaml ($3 tasks)"
    t0=$(now_s)
    "$REPORTD" --config "$dir/config.yaml" task apply -f "$dir/tasks.yaml" >"$dir/apply.log" 2>&1 ||
        { tail -n 20 "$dir/apply.log" >&2; die "task apply failed (log: $dir/apply.log)"; }
    S[$c.apply_s]=$(elapsed "$t0")
    echo "      ${S[$c.apply_s]}s: $(tail -n 1 "$dir/apply.log")"
}

# sched_start CASE: `reportd run` in the background, until "scheduler started" is logged.
# Sets S[CASE.start_s] (seconds to get there) and STARTED (epoch seconds).
STARTED=""
sched_start() {
    local c=$1 dir=$SCHED/$1 t0 deadline=$((SECONDS + BENCH_START_TIMEOUT))
    t0=$(now_s)
    "$REPORTD" --config "$dir/config.yaml" run >"$dir/daemon.out" 2>&1 &
    DAEMON_PID=$!
    until grep -q 'scheduler started' "$dir/reportd.log" 2>/dev/null; do
        kill -0 "$DAEMON_PID" 2>/dev/null ||
            { DAEMON_PID=""; tail -n 20 "$dir/daemon.out" >&2; die "reportd run exited (log: $dir/daemon.out)"; }
        ((SECONDS < deadline)) || die "no 'scheduler started' within ${BENCH_START_TIMEOUT}s (log: $dir/reportd.log)"
        sleep 0.1
    done
    STARTED=$(now_s)
    S[$c.start_s]=$(elapsed "$t0")
    echo "    reportd run: pid $DAEMON_PID, scheduler started after ${S[$c.start_s]}s"
}

sched_delay() {
    local c=delay dir=$SCHED/delay out
    step "scheduler: fire delay, $BENCH_SCHED_TASKS tasks, ${BENCH_SCHED_SECONDS}s ($BENCH_SCHED_FORMAT, max_workers $BENCH_SCHED_WORKERS)"
    S[$c.tasks]=$BENCH_SCHED_TASKS
    sched_setup "$c"
    sched_apply "$c" delay "$BENCH_SCHED_TASKS"
    sched_start "$c"
    # The whole run is sampled: RSS and CPU with fires going on.
    out=$(sched_py sample --pid "$DAEMON_PID" --seconds "$BENCH_SCHED_SECONDS") ||
        die "sampling the daemon failed (did it exit? log: $dir/daemon.out)"
    kv_into "$c" "$out"
    stop_daemon
    # Fires scheduled in the first second after start may have waited for the start-up.
    out=$(sched_py delays --db "$dir/system.db" --since "$(awk -v s="$STARTED" 'BEGIN { printf "%.3f", s + 1 }')") ||
        die "reading the executions failed ($dir/system.db)"
    kv_into "$c" "$out"
    echo "    fires ${S[$c.n]}: p50 ${S[$c.p50]} ms, p99 ${S[$c.p99]} ms, max ${S[$c.max]} ms" \
        "(statuses ${S[$c.statuses]:-none}; left out: ${S[$c.excluded]} early cron," \
        "other triggers ${S[$c.other_triggers]:-none})"
}

sched_idle() {
    local c=idle dir=$SCHED/idle out
    step "scheduler: idle footprint, $BENCH_IDLE_TASKS tasks (settle ${BENCH_IDLE_SETTLE}s, sample ${BENCH_IDLE_SECONDS}s)"
    S[$c.tasks]=$BENCH_IDLE_TASKS
    sched_setup "$c"
    sched_apply "$c" idle "$BENCH_IDLE_TASKS"
    sched_start "$c"
    sleep "$BENCH_IDLE_SETTLE"
    out=$(sched_py sample --pid "$DAEMON_PID" --seconds "$BENCH_IDLE_SECONDS") ||
        die "sampling the daemon failed (did it exit? log: $dir/daemon.out)"
    kv_into "$c" "$out"
    stop_daemon
    out=$(sched_py delays --db "$dir/system.db") || die "reading the executions failed ($dir/system.db)"
    kv_into idle-executions "$out"
    [[ ${S[idle-executions.n]:-0} == 0 ]] ||
        warn "idle case: ${S[idle-executions.n]} task(s) fired during the measurement"
    echo "    RSS ${S[$c.rss_mb]} MB (max ${S[$c.rss_max_mb]}, peak ${S[$c.hwm_mb]}), CPU ${S[$c.cpu_pct]} %" \
        "(${S[$c.cpu_s]}s over ${S[$c.seconds]}s)"
}

sched_report() {
    echo
    echo "reportd scheduler benchmark: $(nproc) cores, $(date '+%Y-%m-%d %H:%M'); work dir $SCHED"
    echo "load average before: $SCHED_LOAD_BEFORE (other work on the machine skews the figures)"
    echo "delay = started_at - scheduled_at of cron fires (nearest rank); RSS/CPU of the daemon" \
        "over the sampled window (delay: the whole run)"
    echo
    local f='  %-6s %6s %8s %8s %6s %8s %8s %8s %7s %8s %6s\n'
    # shellcheck disable=SC2059 # the format is a variable on purpose
    printf "$f" case tasks "apply s" "start s" fires "p50 ms" "p99 ms" "max ms" "RSS MB" "peak MB" "CPU %"
    # shellcheck disable=SC2059
    printf "$f" ------ ------ -------- -------- ------ -------- -------- -------- ------- -------- ------
    local c
    for c in delay idle; do
        [[ -n ${S[$c.tasks]:-} ]] || continue
        # shellcheck disable=SC2059
        printf "$f" "$c" "${S[$c.tasks]}" "${S[$c.apply_s]:-}" "${S[$c.start_s]:-}" "${S[$c.n]:--}" \
            "${S[$c.p50]:--}" "${S[$c.p99]:--}" "${S[$c.max]:--}" "${S[$c.rss_mb]:-}" \
            "${S[$c.hwm_mb]:-}" "${S[$c.cpu_pct]:-}"
    done
    echo
    echo "targets:"
    if [[ -n ${S[delay.tasks]:-} ]]; then
        verdict "fire delay p99 ms ($BENCH_SCHED_TASKS tasks)" "${S[delay.p99]:-}" le "$TARGET_DELAY_P99_MS"
    fi
    if [[ -n ${S[idle.tasks]:-} ]]; then
        verdict "idle RSS MB ($BENCH_IDLE_TASKS tasks)" "${S[idle.rss_max_mb]:-}" lt "$TARGET_IDLE_RSS_MB"
        verdict "idle CPU % ($BENCH_IDLE_TASKS tasks)" "${S[idle.cpu_pct]:-}" lt "$TARGET_IDLE_CPU_PCT"
    fi
    return 0
}

scheduler_main() {
    mkdir -p "$SCHED" "$LOGS"
    ensure_reportd
    SCHED_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    ((BENCH_SCHED_TASKS == 0)) || sched_delay
    ((BENCH_IDLE_TASKS == 0)) || sched_idle
    sched_report
}

# ---------------------------------------------------------------------------
# API (issue 13)
# ---------------------------------------------------------------------------

API=$BENCH_DIR/api
API_DB=reportd_bench_api
API_TOKEN=bench-token
API_USER=bench
API_PASSWORD=bench-Pa55word # a throw-away account of the benchmark's own store
API_REPORTS=()          # report files, one per backend, printed again at the end
API_LOAD_BEFORE=""

api_py() { python3 "$REPO/scripts/bench_api.py" "$@"; }

# api_db BACKEND drop|create: drop the benchmark database (server stores); `create` makes it anew.
api_db() { # BACKEND drop|create
    case $1 in
        mysql)
            mysql_q "" -e "DROP DATABASE IF EXISTS \`$API_DB\`"
            [[ $2 == drop ]] || mysql_q "" -e "CREATE DATABASE \`$API_DB\` CHARACTER SET utf8mb4"
            ;;
        postgres)
            pg_q postgres -c "DROP DATABASE IF EXISTS $API_DB" >/dev/null
            [[ $2 == drop ]] || pg_q postgres -c "CREATE DATABASE $API_DB ENCODING 'UTF8' TEMPLATE template0" >/dev/null
            ;;
    esac
}

api_store_yaml() { # BACKEND DIR
    case $1 in
        sqlite) printf '  type: sqlite\n  sqlite_path: %s/system.db\n' "$2" ;;
        mysql) printf '  type: mysql\n  url: mysql://%s@%s:%s/%s\n' "$MYSQL_USER" "$MYSQL_HOST" "$MYSQL_PORT" "$API_DB" ;;
        postgres) printf '  type: postgresql\n  url: postgres://%s@%s:%s/%s\n' "$PG_USER" "$PG_HOST" "$PG_PORT" "$API_DB" ;;
    esac
}

# api_setup BACKEND: config, tasks, the account, the execution rows. Sets API_PORT, API_IDS
# (the execution id range LO:HI) and API_HAVE_USER.
API_PORT="" API_IDS="" API_HAVE_USER=0
api_setup() {
    local b=$1 dir=$API/$1 t0 n
    rm -rf "$dir"
    mkdir -p "$dir"
    api_db "$b" create
    API_PORT=$(api_py free-port)
    cat >"$dir/config.yaml" <<YAML
# Generated by scripts/bench.sh (API, store $b).
system_database:
$(api_store_yaml "$b" "$dir")
data_sources:
  demo:
    type: sqlite
    database: $API/demo.db
    demo_data: true
export:
  temp_dir: $dir/temp
  output_dir: $dir/exports
logging:
  level: INFO
  file: $dir/reportd.log
scheduler:
  log_retention_days: 3650
daemon:
  pid_file: $dir/reportd.pid
  shutdown_timeout: 10
http:
  bind: 127.0.0.1:$API_PORT
  token: $API_TOKEN
  # The load generator is one address opening BENCH_API_WORKERS connections (and login bursts
  # of BENCH_API_BURST): it stands for many clients, so the per-address cap (default 32) must
  # not cut it short.
  max_connections_per_address: 1024
security:
  secret_key_file: $dir/secret.key
YAML
    "$REPORTD" --config "$dir/config.yaml" datasource test demo >"$dir/datasource-test.log" 2>&1 ||
        { cat "$dir/datasource-test.log" >&2; die "the demo data source does not work ($b)"; }

    api_py tasks --count "$BENCH_API_TASKS" --source demo -o "$dir/tasks.yaml"
    t0=$(now_s)
    "$REPORTD" --config "$dir/config.yaml" task apply -f "$dir/tasks.yaml" >"$dir/apply.log" 2>&1 ||
        { tail -n 20 "$dir/apply.log" >&2; die "task apply failed (log: $dir/apply.log)"; }
    echo "    task apply -f tasks.yaml ($BENCH_API_TASKS tasks): $(elapsed "$t0")s"

    API_HAVE_USER=0
    if printf '%s\n' "$API_PASSWORD" | "$REPORTD" --config "$dir/config.yaml" user add "$API_USER" \
        --role viewer --password-stdin >"$dir/user-add.log" 2>&1; then
        API_HAVE_USER=1
    else
        warn "reportd user add failed ($(head -n 1 "$dir/user-add.log")): the one-login time is not measured"
    fi

    t0=$(now_s)
    case $b in
        sqlite)
            api_py seed --backend sqlite --db "$dir/system.db" --rows "$BENCH_API_EXECUTIONS" \
                --output-dir "$dir/exports"
            API_IDS=$(sqlite3 "$dir/system.db" "SELECT MIN(id) || ':' || MAX(id) FROM executions" 2>/dev/null ||
                python3 -c 'import sqlite3, sys; print("%s:%s" % sqlite3.connect(sys.argv[1]).execute(
                    "SELECT MIN(id), MAX(id) FROM executions").fetchone())' "$dir/system.db")
            ;;
        mysql)
            mysql_q "$API_DB" -e "SELECT id, name FROM tasks" >"$dir/task-ids.tsv"
            api_py seed --backend mysql --ids "$dir/task-ids.tsv" --rows "$BENCH_API_EXECUTIONS" \
                --output-dir "$dir/exports" | mysql_q "$API_DB" >/dev/null
            API_IDS=$(mysql_q "$API_DB" -e "SELECT CONCAT(MIN(id), ':', MAX(id)) FROM executions")
            ;;
        postgres)
            pg_q "$API_DB" -F $'\t' -c "SELECT id, name FROM tasks" >"$dir/task-ids.tsv"
            api_py seed --backend postgres --ids "$dir/task-ids.tsv" --rows "$BENCH_API_EXECUTIONS" \
                --output-dir "$dir/exports" | pg_q "$API_DB" >/dev/null
            API_IDS=$(pg_q "$API_DB" -c "SELECT MIN(id) || ':' || MAX(id) FROM executions")
            ;;
    esac
    n=${API_IDS#*:}
    echo "    $BENCH_API_EXECUTIONS execution rows inserted in $(elapsed "$t0")s (ids $API_IDS)"
    [[ $n =~ ^[0-9]+$ ]] || die "seeding the executions failed ($b)"
}

# api_start BACKEND: `reportd run` in the background, until "scheduler started" is logged.
api_start() {
    local dir=$API/$1 t0 deadline=$((SECONDS + BENCH_START_TIMEOUT))
    t0=$(now_s)
    "$REPORTD" --config "$dir/config.yaml" run >"$dir/daemon.out" 2>&1 &
    DAEMON_PID=$!
    until grep -q 'scheduler started' "$dir/reportd.log" 2>/dev/null; do
        kill -0 "$DAEMON_PID" 2>/dev/null ||
            { DAEMON_PID=""; tail -n 20 "$dir/daemon.out" >&2; die "reportd run exited (log: $dir/daemon.out)"; }
        ((SECONDS < deadline)) || die "no 'scheduler started' within ${BENCH_START_TIMEOUT}s (log: $dir/reportd.log)"
        sleep 0.1
    done
    echo "    reportd run: pid $DAEMON_PID, port $API_PORT, scheduler started after $(elapsed "$t0")s"
}

api_backend() {
    local b=$1 dir=$API/$1 user_args=() rc=0
    step "API: store $b ($BENCH_API_TASKS tasks, $BENCH_API_EXECUTIONS executions)"
    api_setup "$b"
    api_start "$b"
    ((API_HAVE_USER)) && user_args=(--user "$API_USER")
    BENCH_API_PASSWORD=$API_PASSWORD api_py run --url "http://127.0.0.1:$API_PORT" --token "$API_TOKEN" \
        --pid "$DAEMON_PID" --backend "$b" --tasks "$BENCH_API_TASKS" --executions "$BENCH_API_EXECUTIONS" \
        --exec-ids "$API_IDS" --requests "$BENCH_API_REQUESTS" --rate "$BENCH_API_RATE" \
        --seconds "$BENCH_API_SECONDS" --workers "$BENCH_API_WORKERS" --settle "$BENCH_API_SETTLE" \
        --burst "$BENCH_API_BURST" --start-timeout "$BENCH_START_TIMEOUT" --load "$API_LOAD_BEFORE" \
        "${user_args[@]}" --report "$dir/report.txt" >"$dir/run.out" || rc=$?
    stop_daemon
    if ((rc != 0)); then
        warn "the API measurements failed on $b (exit $rc; output: $dir/run.out)"
    else
        API_REPORTS+=("$dir/report.txt")
    fi
    [[ $BENCH_API_KEEP == 1 ]] || api_db "$b" drop
}

api_main() {
    local b
    for b in $BENCH_API_BACKENDS; do
        [[ $b =~ ^(sqlite|mysql|postgres)$ ]] || die "BENCH_API_BACKENDS: unknown store '$b' (sqlite mysql postgres)"
    done
    for v in BENCH_API_TASKS BENCH_API_EXECUTIONS BENCH_API_REQUESTS BENCH_API_SECONDS BENCH_API_WORKERS \
        BENCH_API_BURST BENCH_START_TIMEOUT; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
    done
    [[ $BENCH_API_RATE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_API_RATE must be a number, got '$BENCH_API_RATE'"
    [[ $BENCH_API_SETTLE =~ ^[0-9]+$ ]] || die "BENCH_API_SETTLE must be an integer, got '$BENCH_API_SETTLE'"
    [[ -r /proc/self/stat ]] || die "the API benchmark reads /proc (Linux)"
    command -v python3 >/dev/null || die "python3 is needed"
    mkdir -p "$API" "$LOGS"
    if [[ " $BENCH_API_BACKENDS " =~ \ (mysql|postgres)\  ]]; then
        ensure_services
    fi
    ensure_reportd
    API_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    for b in $BENCH_API_BACKENDS; do
        api_backend "$b"
    done
    echo
    local r
    for r in "${API_REPORTS[@]}"; do
        cat "$r"
        echo
    done
    return 0
}

# ---------------------------------------------------------------------------

export_main() {
    mkdir -p "$BENCH_DIR" "$LOGS" "$OUT"
    ensure_services
    [[ $BENCH_SKIP_PYTHON == 1 ]] || ensure_venv
    check_reportd
    build_floor
    write_config
    build_tables
    run_cases
    report
}

# ---------------------------------------------------------------------------
# Split reads (issue 28)
# ---------------------------------------------------------------------------

TARGET_SPLIT_CSV_RATIO=0.80  # CSV, 4 readers / single, at most
TARGET_SPLIT_XLSX_RATIO=1.05 # xlsx, 4 readers / single, at most (no slower, within noise)

split_case() { # SOURCE TAG FORMAT READERS(0: single)
    local src=$1 tag=$2 fmt=$3 n=$4 name out
    if ((n == 0)); then
        name=split-$tag-$fmt-single
        out=$OUT/$name.$fmt
        time_case "$name" "$ROWS" "$out" -- "$REPORTD" --config "$CONFIG" export --source "$src" \
            --sql "SELECT * FROM orders WHERE 1=1 ORDER BY id" -o "$out"
    else
        name=split-$tag-$fmt-r$n
        out=$OUT/$name.$fmt
        time_case "$name" "$ROWS" "$out" -- "$REPORTD" --config "$CONFIG" export --source "$src" \
            --sql "SELECT * FROM orders WHERE {split} ORDER BY id" -o "$out" \
            --split-column id --readers "$n" --chunk-rows "$BENCH_SPLIT_CHUNK"
        if [[ $fmt == csv ]] && ok "$name" && ok "split-$tag-$fmt-single" &&
            ! cmp -s "$out" "$OUT/split-$tag-$fmt-single.$fmt"; then
            warn "$name: the file differs from the single reader's"
            R_STATUS[$name]="differs"
        fi
    fi
}

split_main() {
    mkdir -p "$BENCH_DIR" "$LOGS" "$OUT"
    [[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed: apt-get install time"
    ensure_services
    ensure_reportd
    write_config
    ROWS_BIG=0 build_tables
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    local run src tag fmt n
    for ((run = 1; run <= BENCH_SPLIT_REPEAT; run++)); do
        for src in bench_mysql bench_pg; do
            tag=${src#bench_}
            for fmt in $BENCH_SPLIT_FORMATS; do
                split_case "$src" "$tag" "$fmt" 0
                for n in $BENCH_SPLIT_READERS; do split_case "$src" "$tag" "$fmt" "$n"; done
            done
        done
    done
    echo
    echo "reportd split benchmark: $ROWS rows, $(nproc) cores, $(date '+%Y-%m-%d %H:%M'); load before: $LOAD_BEFORE"
    printf '  %-24s %8s %8s %10s\n' case "wall s" "x single" "RSS MB"
    for tag in mysql pg; do
        for fmt in $BENCH_SPLIT_FORMATS; do
            for n in single $BENCH_SPLIT_READERS; do
                local c=split-$tag-$fmt-$n
                [[ $n == single ]] || c=split-$tag-$fmt-r$n
                printf '  %-24s %8s %8s %10s %s\n' "$c" "${R_WALL[$c]:-}" "$(ratio "$c" "split-$tag-$fmt-single")" \
                    "${R_RSS[$c]:-}" "$([[ ${R_STATUS[$c]:-} == ok ]] || echo "${R_STATUS[$c]:-}")"
            done
        done
    done
    echo
    echo "targets:"
    for tag in mysql pg; do
        verdict "$tag csv 4 readers / single" "$(ratio "split-$tag-csv-r4" "split-$tag-csv-single")" le "$TARGET_SPLIT_CSV_RATIO"
        verdict "$tag xlsx 4 readers / single" "$(ratio "split-$tag-xlsx-r4" "split-$tag-xlsx-single")" le "$TARGET_SPLIT_XLSX_RATIO"
        verdict "$tag csv 4 readers peak RSS MB" "${R_RSS[split-$tag-csv-r4]:-}" le "$TARGET_RSS_MB"
        verdict "$tag xlsx 4 readers peak RSS MB" "${R_RSS[split-$tag-xlsx-r4]:-}" le "$TARGET_RSS_MB"
    done
    return 0
}

notify_main() {
    command -v python3 >/dev/null || die "python3 is needed"
    ensure_reportd
    rm -rf "$BENCH_DIR/notify"
    python3 "$(dirname "$0")/bench_notify.py" "$REPORTD" "$BENCH_DIR/notify" || true
}

jobs_main() {
    command -v python3 >/dev/null || die "python3 is needed"
    command -v mysql >/dev/null || die "the mysql client is needed (process list)"
    mkdir -p "$BENCH_DIR" "$LOGS"
    ensure_services
    ensure_reportd
    ROWS_BIG=0 build_tables
    python3 "$(dirname "$0")/bench_jobs.py" "$REPORTD" "$BENCH_DIR/jobs" "$DB" "$ROWS" || true
}

BENCH_CONSOLE_REQUESTS=${BENCH_CONSOLE_REQUESTS:-200}
console_main() {
    local dir rc=0
    command -v python3 >/dev/null || die "python3 is needed"
    [[ $BENCH_CONSOLE_REQUESTS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONSOLE_REQUESTS must be a positive integer"
    ensure_reportd
    API=$BENCH_DIR/console
    dir=$API/sqlite
    mkdir -p "$API" "$LOGS"
    step "Console: SQLite store ($BENCH_API_TASKS tasks, $BENCH_API_EXECUTIONS executions)"
    api_setup sqlite
    printf '%s\n' "$API_PASSWORD" | "$REPORTD" --config "$dir/config.yaml" user add bench-admin \
        --role admin --password-stdin >"$dir/admin-add.log" 2>&1 || die "reportd user add failed ($dir/admin-add.log)"
    api_start sqlite
    BENCH_CONSOLE_PASSWORD=$API_PASSWORD python3 "$REPO/scripts/bench_console.py" run \
        --url "http://127.0.0.1:$API_PORT" --pid "$DAEMON_PID" --user bench-admin \
        --requests "$BENCH_CONSOLE_REQUESTS" --settle "$BENCH_API_SETTLE" --tasks "$BENCH_API_TASKS" \
        --executions "$BENCH_API_EXECUTIONS" --report "$dir/report.txt" >"$dir/run.out" || rc=$?
    stop_daemon
    if ((rc != 0)); then
        warn "the console measurements failed (exit $rc; output: $dir/run.out)"
    else
        echo
        cat "$dir/report.txt"
    fi
    return 0
}

BENCH_HERD_TASKS=${BENCH_HERD_TASKS:-1000}
BENCH_HERD_WORKERS=${BENCH_HERD_WORKERS:-10}
BENCH_HERD_CONNECTIONS=${BENCH_HERD_CONNECTIONS:-5}
BENCH_HERD_WARM=${BENCH_HERD_WARM:-20}
BENCH_HERD_LEAD=${BENCH_HERD_LEAD:-40} # seconds from now to the fire: apply and start fit in
TARGET_HERD_S=3
TARGET_WARM_MS=20
herd_py() { python3 "$REPO/scripts/bench_herd.py" "$@"; }

herd_main() {
    local dir=$BENCH_DIR/herd port fire warm_at out deadline
    command -v python3 >/dev/null || die "python3 is needed"
    for v in BENCH_HERD_TASKS BENCH_HERD_WORKERS BENCH_HERD_CONNECTIONS BENCH_HERD_WARM BENCH_HERD_LEAD; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
    done
    mkdir -p "$LOGS"
    ensure_services
    ensure_reportd
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$dir/config.yaml" <<YAML
# Generated by scripts/bench.sh (herd).
system_database:
  type: sqlite
  sqlite_path: $dir/system.db
${BENCH_HERD_STORE_CONNECTIONS:+  max_connections: $BENCH_HERD_STORE_CONNECTIONS}
data_sources:
  herd_mysql:
    type: mysql
    url: mysql://$MYSQL_USER@$MYSQL_HOST:$MYSQL_PORT/mysql
    max_connections: $BENCH_HERD_CONNECTIONS
  herd_pg:
    type: postgresql
    url: postgres://$PG_USER@$PG_HOST:$PG_PORT/postgres
    max_connections: $BENCH_HERD_CONNECTIONS
export:
  temp_dir: $dir/temp
  output_dir: $dir/exports
logging:
  level: INFO
  file: $dir/reportd.log
scheduler:
  timezone: UTC
  max_workers: $BENCH_HERD_WORKERS
daemon:
  pid_file: $dir/reportd.pid
  shutdown_timeout: 10
http:
  bind: 127.0.0.1:$port
YAML
    S[herd.load]=$(cut -d' ' -f1-3 /proc/loadavg)
    fire=$(($(date +%s) + BENCH_HERD_LEAD))
    warm_at=$((fire + 15))
    step "herd: $BENCH_HERD_TASKS tasks at $(date -u -d "@$fire" +%H:%M:%S) UTC, max_workers $BENCH_HERD_WORKERS; then $BENCH_HERD_WARM warm runs"
    herd_py tasks --count "$BENCH_HERD_TASKS" --at "$fire" --warm "$BENCH_HERD_WARM" --warm-at "$warm_at" -o "$dir/tasks.yaml"
    "$REPORTD" --config "$dir/config.yaml" task apply -f "$dir/tasks.yaml" >"$dir/apply.log" 2>&1 ||
        { tail -n 20 "$dir/apply.log" >&2; die "task apply failed (log: $dir/apply.log)"; }
    "$REPORTD" --config "$dir/config.yaml" run >"$dir/daemon.out" 2>&1 &
    DAEMON_PID=$!
    (($(date +%s) < fire - 2)) || die "apply and start took longer than BENCH_HERD_LEAD=$BENCH_HERD_LEAD s: raise it"
    # The herd: until every fire has a finished execution (or 120 s after the fire).
    deadline=$((fire + 120))
    while :; do
        sleep 1
        (($(date +%s) > fire)) || continue
        out=$(herd_py herd --db "$dir/system.db")
        kv_into herd "$out"
        [[ ${S[herd.runs]} == "$BENCH_HERD_TASKS" && ${S[herd.statuses]} != *running* ]] && break
        (($(date +%s) < deadline)) || { warn "the herd did not finish within 120 s"; break; }
    done
    S[herd.cpu_s]=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$DAEMON_PID/stat")
    herd_py snapshot --url "http://127.0.0.1:$port/metrics" -o "$dir/metrics-before-warm.txt"
    while (($(date +%s) < warm_at + BENCH_HERD_WARM + 2)); do sleep 1; done
    out=$(herd_py metrics --url "http://127.0.0.1:$port/metrics" --before "$dir/metrics-before-warm.txt")
    kv_into warm "$out"
    stop_daemon
    echo
    echo "reportd herd benchmark: $(nproc) cores, $(date '+%Y-%m-%d %H:%M'); work dir $dir"
    echo "load average before: ${S[herd.load]} (other work on the machine skews the figures)"
    echo "  herd: ${S[herd.runs]} runs (${S[herd.statuses]}), all finished ${S[herd.all_done_s]} s after the fire;" \
        "daemon CPU ${S[herd.cpu_s]} s since its start"
    echo "  warm runs: fire -> first query p50 <= ${S[warm.start_p50_le_ms]} ms (${S[warm.start_n]} runs)," \
        "last row -> record p50 <= ${S[warm.finish_p50_le_ms]} ms"
    echo
    echo "targets:"
    verdict "herd: every run finished, s after the fire" "${S[herd.all_done_s]}" le "$TARGET_HERD_S"
    verdict "herd: runs skipped" "${S[herd.skipped]}" le 0
    verdict "warm run overhead p50 ms (bucket bound)" "${S[warm.start_p50_le_ms]}" le "$TARGET_WARM_MS"
    return 0
}

BENCH_STORAGE_MB=${BENCH_STORAGE_MB:-200}
TARGET_UPLOAD_RATIO=1.3 # upload time / disk copy time, at most
TARGET_UPLOAD_RSS_MB=64 # peak RSS of the delivering run, at most
storage_main() {
    local dir=$BENCH_DIR/storage rows port fifo pid tv wall_plain wall_deliver rss copy_s upload_s file ratio
    [[ $BENCH_STORAGE_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_STORAGE_MB must be a positive integer"
    [[ -x /usr/bin/time ]] || die "/usr/bin/time (GNU time) is needed: apt-get install time"
    python3 -c 'import moto.server, boto3' 2>/dev/null || die "moto[server] is needed (scripts/test.sh installs it)"
    ensure_reportd
    rm -rf "$dir"
    mkdir -p "$dir/s3" "$LOGS"
    # ~100 bytes of CSV a row.
    rows=$((BENCH_STORAGE_MB * 1024 * 1024 / 100))
    step "Storage: a $BENCH_STORAGE_MB MB report ($rows rows) to moto_server"
    python3 - "$dir/big.db" "$rows" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, a TEXT, b TEXT)")
con.executemany("INSERT INTO big (a, b) VALUES (?, ?)",
                ((f"{i:012d}-" + "x" * 40, "y" * 30) for i in range(int(sys.argv[2]))))
con.commit()
PY
    fifo=$dir/s3.stdin
    mkfifo "$fifo"
    python3 -W ignore "$REPO/tests/stand_ins/storage.py" s3 "$dir/s3" <"$fifo" >"$dir/s3.port" 2>"$dir/s3.log" &
    pid=$!
    exec {keep}>"$fifo"
    for _ in $(seq 100); do grep -q PORT "$dir/s3.port" 2>/dev/null && break; sleep 0.2; done
    port=$(sed -n 's/^PORT //p' "$dir/s3.port")
    [[ -n $port ]] || die "moto_server did not start ($dir/s3.log)"
    cat >"$dir/config.yaml" <<YAML
# Generated by scripts/bench.sh (storage).
system_database: { type: sqlite, sqlite_path: $dir/system.db }
data_sources:
  big: { type: sqlite, database: $dir/big.db }
export: { temp_dir: $dir/temp, output_dir: $dir/exports, max_file_size: 4GB }
storage:
  s3: { type: s3, endpoint: "http://127.0.0.1:$port", bucket: reports, access_key_id: test-key,
        secret_access_key: test-secret, root: bench }
YAML
    for deliver in plain deliver; do
        {
            echo "tasks:"
            echo "  - name: $deliver"
            echo "    data_source: big"
            echo "    cron: '@yearly'"
            echo "    sql: SELECT * FROM big"
            echo "    output: { format: csv, filename: '$deliver.csv' }"
            [[ $deliver == deliver ]] && echo "    deliver: [s3]"
        } >"$dir/$deliver.yaml"
        "$REPORTD" --config "$dir/config.yaml" task apply -f "$dir/$deliver.yaml" >/dev/null
    done
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    for deliver in plain deliver; do
        tv=$dir/$deliver.time
        RUST_LOG=info /usr/bin/time -v -o "$tv" "$REPORTD" --config "$dir/config.yaml" task run "$deliver" >"$dir/$deliver.log" 2>&1 ||
            { cat "$dir/$deliver.log" >&2; warn "task run $deliver failed"; }
    done
    wall() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$1"; }
    wall_plain=$(wall "$dir/plain.time")
    wall_deliver=$(wall "$dir/deliver.time")
    rss=$(awk -F': ' '/Maximum resident/ { printf "%.1f", $2 / 1024 }' "$dir/deliver.time")
    file=$(find "$dir/exports" -name 'deliver*.csv' | head -n 1)
    sync
    # A copy that reaches the disk (fsync), as an upload's bytes leave the machine.
    copy_s=$( { /usr/bin/time -f %e dd if="$file" of="$dir/copy.csv" bs=8M conv=fsync status=none; } 2>&1 | tail -n 1)
    rm -f "$dir/copy.csv"
    # The upload's own time: from the run's "delivering to storage" log line to its "file
    # delivered" line (the difference of the two runs' walls drowns in the export's noise).
    upload_s=$(python3 - "$dir/deliver.log" <<'PY'
import re, sys
from datetime import datetime
stamps = {}
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"\S*?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    for event in ("delivering to storage", "file delivered"):
        if m and event in line:
            stamps[event] = datetime.fromisoformat(m.group(1)[:26])
if len(stamps) == 2:
    print(f"{(stamps['file delivered'] - stamps['delivering to storage']).total_seconds():.2f}")
PY
)
    ratio=$(awk -v u="$upload_s" -v c="$copy_s" 'BEGIN { if (u != "" && c > 0) printf "%.2f", u / c }')
    exec {keep}>&-
    wait "$pid" 2>/dev/null || true
    echo
    echo "reportd storage benchmark: $(nproc) cores, $(date '+%Y-%m-%d %H:%M'); binary $REPORTD; work dir $dir"
    echo "load average before: $LOAD_BEFORE (other work on the machine skews the figures)"
    echo "  report: $(du -m "$file" | cut -f1) MB CSV; run without deliver ${wall_plain}s, with deliver ${wall_deliver}s"
    echo "  upload: ${upload_s}s; disk copy (dd conv=fsync): ${copy_s}s; peak RSS: ${rss} MB delivering, $(awk -F': ' '/Maximum resident/ { printf "%.1f", $2 / 1024 }' "$dir/plain.time") MB without"
    echo
    echo "targets:"
    verdict "upload time / disk copy time" "$ratio" le "$TARGET_UPLOAD_RATIO"
    verdict "peak RSS MB (export + upload)" "$rss" le "$TARGET_UPLOAD_RSS_MB"
    return 0
}

main() {
    if want export; then export_main; fi
    if want scheduler; then scheduler_main; fi
    if want api; then api_main; fi
    if want notify; then notify_main; fi
    if want jobs; then jobs_main; fi
    if want console; then console_main; fi
    if want herd; then herd_main; fi
    if want split; then split_main; fi
    if want storage; then storage_main; fi
}

main "$@"

#!/usr/bin/env bash
# Property-based test of the REST API against its own document (Schemathesis, all checks, all
# phases): a daemon on a scratch SQLite store with an admin, an editor and a viewer, fuzzed as
# each of them and without credentials, bounded in examples and wall-clock time.
#
# Usage: scripts/api_fuzz.sh [BINARY]   (default target/debug/reportd; needs `st`, which
# scripts/test.sh pip-installs). Knobs: API_FUZZ_EXAMPLES (25), API_FUZZ_SECONDS per role (25).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${1:-target/debug/reportd}
EXAMPLES=${API_FUZZ_EXAMPLES:-25}
SECONDS_PER_ROLE=${API_FUZZ_SECONDS:-25}
CONFIG_FILE=$PWD/scripts/api_fuzz/schemathesis.toml
[[ -x $BIN ]] || { echo "error: $BIN not built" >&2; exit 1; }
BIN=$(realpath "$BIN")

WORK=$(mktemp -d)
DAEMON=""
cleanup() {
    [[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
TOKEN=fuzz-admin-token-$RANDOM$RANDOM
PASSWORD=fuzz-password-9
cat >"$WORK/config.yaml" <<YAML
system_database:
  type: sqlite
  sqlite_path: ./data/system.db
data_sources:
  demo:
    type: sqlite
    database: ./data/demo.db
    demo_data: true
http:
  bind: 127.0.0.1:$PORT
  token: $TOKEN
security:
  outbound_allow: [127.0.0.1]
YAML
cp -r templates "$WORK/templates"
cd "$WORK"
for user in ann:admin ed:editor vic:viewer; do
    echo "$PASSWORD" | "$BIN" --config config.yaml user add "${user%%:*}" --role "${user##*:}" --password-stdin >/dev/null
done
"$BIN" --config config.yaml run >daemon.log 2>&1 &
DAEMON=$!
for _ in $(seq 100); do
    curl -fs "$BASE/health" >/dev/null 2>&1 && break
    sleep 0.2
done

login() {
    curl -fs -H 'Content-Type: application/json' \
        -d "{\"username\": \"$1\", \"password\": \"$PASSWORD\"}" "$BASE/api/auth/login" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
EDITOR=$(login ed)
VIEWER=$(login vic)

# fuzz NAME [st options...]: one bounded run; its output kept in $WORK/st-NAME.txt.
failed=0
fuzz() {
    local name=$1
    shift
    local start=$SECONDS
    if st --config-file "$CONFIG_FILE" run "$BASE/api/openapi.json" --url "$BASE" \
        --checks all --phases examples,coverage,fuzzing,stateful \
        -n "$EXAMPLES" --max-time "$SECONDS_PER_ROLE" --generation-deterministic \
        --request-timeout 10 --no-color "$@" >"st-$name.txt" 2>&1; then
        echo "api fuzz as $name: ok ($((SECONDS - start))s, $(grep -Eo '[0-9]+ generated' "st-$name.txt" | head -1))"
    else
        echo "api fuzz as $name: FAILED ($((SECONDS - start))s)" >&2
        sed -n '/FAILURES/,$p' "st-$name.txt" | head -n 150 >&2
        failed=1
    fi
}

# Logging out would end the run's own token; the admin runs last with http.token (no account,
# so the user routes it fuzzes cannot remove it) and may change the other accounts.
fuzz anonymous
fuzz viewer -H "Authorization: Bearer $VIEWER" --exclude-operation-id logout
fuzz editor -H "Authorization: Bearer $EDITOR" --exclude-operation-id logout
fuzz admin -H "Authorization: Bearer $TOKEN" --exclude-operation-id logout
if grep -q panicked daemon.log; then
    echo "the daemon panicked:" >&2
    grep -A5 panicked daemon.log >&2
    failed=1
fi
exit $failed

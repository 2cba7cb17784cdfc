#!/usr/bin/env bash
# Installs reportd as a systemd service (run as root from the repository):
#
#   $PREFIX/bin/reportd                         the binary without debug info (PREFIX default /usr/local)
#   $PREFIX/share/doc/reportd/README.md         the manual (the unit's Documentation=)
#   /etc/systemd/system/reportd.service         systemd/reportd.service, always replaced
#   /etc/reportd/config.yaml                    systemd/config.yaml, only when absent
#   /etc/reportd/templates/                     templates/, files that are not there yet
#   /var/lib/reportd/{data,exports,tmp}         store, exports, temp files (user reportd)
#   /var/log/reportd/                           logging.file
#
# and the system user and group `reportd`. Running it again is safe: it upgrades the binary
# and the unit and keeps the config, the templates and all data.
#
# Environment:
#   DESTDIR      stage everything under this directory instead of / (for packaging and
#                tests). No user is created, nothing is chown'ed, systemctl is not run, and
#                root is not needed.
#   REPORTD_BIN  the binary to install (default target/release/reportd). Implies --no-build.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/install.sh [--prefix DIR] [--no-build]
       scripts/install.sh --uninstall [--purge] [--prefix DIR]

Installs reportd as a systemd service: binary, unit, config, templates, directories and
the `reportd` system user. Must be run as root unless DESTDIR is set.

Options:
  --prefix DIR   install the binary under DIR/bin (default: /usr/local)
  --no-build     do not run `cargo build --release --locked`; install the binary already
                 built in target/release/reportd (or $REPORTD_BIN)
  --uninstall    stop and disable the service, remove the unit and the binary; keep
                 /etc/reportd, /var/lib/reportd, /var/log/reportd and the user
  --purge        with --uninstall: also remove those directories and the reportd user
  -h, --help     show this help

Environment:
  DESTDIR=DIR        stage under DIR (no root, no user, no chown, no systemctl)
  REPORTD_BIN=FILE   binary to install instead of target/release/reportd (implies --no-build)
EOF
}

die() {
    echo "error: $*" >&2
    exit 1
}

usage_error() {
    echo "error: $*" >&2
    echo "Try 'scripts/install.sh --help'." >&2
    exit 2
}

step() {
    echo "==> $*"
}

PREFIX=/usr/local
BUILD=1
UNINSTALL=0
PURGE=0

while [[ $# -gt 0 ]]; do
    case $1 in
        -h | --help)
            usage
            exit 0
            ;;
        --prefix)
            [[ $# -ge 2 ]] || usage_error "--prefix needs a directory"
            PREFIX=$2
            shift
            ;;
        --prefix=*) PREFIX=${1#--prefix=} ;;
        --no-build) BUILD=0 ;;
        --uninstall) UNINSTALL=1 ;;
        --purge) PURGE=1 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
    shift
done

[[ $PURGE -eq 0 || $UNINSTALL -eq 1 ]] || usage_error "--purge goes with --uninstall"
[[ $PREFIX == /* ]] || usage_error "--prefix must be an absolute path: $PREFIX"
PREFIX=${PREFIX%/} # "/" becomes "": paths are built as $PREFIX/bin

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}
STAGED=0
[[ -n $DESTDIR ]] && STAGED=1

if [[ -n ${REPORTD_BIN:-} ]]; then
    BIN_SRC=$REPORTD_BIN
    BUILD=0
else
    BIN_SRC=$REPO/target/release/reportd
fi

if [[ $STAGED -eq 0 && $(id -u) -ne 0 ]]; then
    die "must be run as root (or with DESTDIR=DIR to stage the files somewhere else)"
fi

# Installed paths, with DESTDIR in front.
BIN=$DESTDIR$PREFIX/bin/reportd
DOC_DIR=$DESTDIR$PREFIX/share/doc/reportd
UNIT=$DESTDIR/etc/systemd/system/reportd.service
UNIT_WANTS=$DESTDIR/etc/systemd/system/multi-user.target.wants/reportd.service
UNIT_DROPINS=$DESTDIR/etc/systemd/system/reportd.service.d
ETC=$DESTDIR/etc/reportd
VAR_LIB=$DESTDIR/var/lib/reportd
VAR_LOG=$DESTDIR/var/log/reportd
USER_NAME=reportd

systemd_running() { [[ $STAGED -eq 0 && -d /run/systemd/system ]]; }

# install(1) with owner and group, except when staging (files then belong to the caller).
# usage: inst OWNER:GROUP INSTALL-ARGS...
inst() {
    local owner=$1
    shift
    if [[ $STAGED -eq 1 ]]; then
        install "$@"
    else
        install -o "${owner%:*}" -g "${owner#*:}" "$@"
    fi
}

# ---------------------------------------------------------------------------
# Uninstall
# ---------------------------------------------------------------------------

uninstall() {
    step "uninstall reportd${DESTDIR:+ from $DESTDIR}"
    if systemd_running; then
        if systemctl cat reportd.service >/dev/null 2>&1; then
            systemctl disable --now reportd.service || true
        fi
    fi
    rm -f "$UNIT_WANTS" "$UNIT"
    echo "removed ${UNIT#"$DESTDIR"}"
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed reportd.service >/dev/null 2>&1 || true
    fi
    rm -f "$BIN"
    rm -rf "$DOC_DIR"
    echo "removed ${BIN#"$DESTDIR"}"

    if [[ $PURGE -eq 1 ]]; then
        rm -rf "$UNIT_DROPINS" "$ETC" "$VAR_LIB" "$VAR_LOG"
        echo "removed ${ETC#"$DESTDIR"}, ${VAR_LIB#"$DESTDIR"}, ${VAR_LOG#"$DESTDIR"}"
        if [[ $STAGED -eq 0 ]]; then
            if id -u "$USER_NAME" >/dev/null 2>&1; then
                userdel "$USER_NAME"
                echo "removed user $USER_NAME"
            fi
            if getent group "$USER_NAME" >/dev/null 2>&1; then
                groupdel "$USER_NAME"
                echo "removed group $USER_NAME"
            fi
        fi
    else
        echo "kept ${ETC#"$DESTDIR"}, ${VAR_LIB#"$DESTDIR"}, ${VAR_LOG#"$DESTDIR"} and the $USER_NAME user (--purge removes them)"
    fi
}

if [[ $UNINSTALL -eq 1 ]]; then
    uninstall
    exit 0
fi

# ---------------------------------------------------------------------------
# Install
# ---------------------------------------------------------------------------

if [[ $BUILD -eq 1 ]]; then
    step "cargo build --release --locked"
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found; build as your own user (cargo build --release --locked) and run this script with --no-build"
    (cd "$REPO" && cargo build --release --locked)
fi
[[ -f $BIN_SRC && -x $BIN_SRC ]] ||
    die "no binary at $BIN_SRC; build it (cargo build --release --locked) or leave out --no-build"

step "install reportd${DESTDIR:+ into $DESTDIR}"

if [[ $STAGED -eq 0 ]]; then
    if ! getent group "$USER_NAME" >/dev/null 2>&1; then
        groupadd --system "$USER_NAME"
        echo "created group $USER_NAME"
    fi
    if ! id -u "$USER_NAME" >/dev/null 2>&1; then
        nologin=/usr/sbin/nologin
        [[ -x $nologin ]] || nologin=/sbin/nologin
        [[ -x $nologin ]] || nologin=/bin/false
        useradd --system --gid "$USER_NAME" --home-dir /var/lib/reportd --no-create-home \
            --shell "$nologin" --comment "reportd scheduled SQL reports" "$USER_NAME"
        echo "created user $USER_NAME"
    fi
fi

inst root:root -d -m 0755 "$(dirname "$BIN")" "$DOC_DIR" "$(dirname "$UNIT")"
# Copy to a temporary name first: replacing the file of a running binary in place fails
# ("Text file busy"), a rename does not.
inst root:root -m 0755 "$BIN_SRC" "$BIN.new"
# Without debug info whatever profile built it (line tables alone are 100 MB); symbol names
# stay, for readable backtraces. Without strip(1) the binary is installed as it is.
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$BIN.new" || echo "warning: strip failed; installed with its debug info" >&2
else
    echo "warning: strip not found (binutils); installed with its debug info" >&2
fi
mv -f "$BIN.new" "$BIN"
echo "installed ${BIN#"$DESTDIR"}"
inst root:root -m 0644 "$REPO/README.md" "$DOC_DIR/README.md"

# Config and templates: readable by the service (group reportd), never overwritten.
inst "root:$USER_NAME" -d -m 0750 "$ETC" "$ETC/templates"
if [[ -e $ETC/config.yaml ]]; then
    echo "kept ${ETC#"$DESTDIR"}/config.yaml"
else
    inst "root:$USER_NAME" -m 0640 "$REPO/systemd/config.yaml" "$ETC/config.yaml"
    echo "installed ${ETC#"$DESTDIR"}/config.yaml"
fi
for src in "$REPO"/templates/*; do
    [[ -f $src ]] || continue
    dst=$ETC/templates/$(basename "$src")
    if [[ -e $dst ]]; then
        cmp -s "$src" "$dst" || echo "kept ${dst#"$DESTDIR"} (differs from the shipped $(basename "$src"))"
    else
        inst "root:$USER_NAME" -m 0640 "$src" "$dst"
        echo "installed ${dst#"$DESTDIR"}"
    fi
done

# The only places the service may write to (ReadWritePaths= in the unit; they must exist).
inst "$USER_NAME:$USER_NAME" -d -m 0750 "$VAR_LIB" "$VAR_LIB/data" "$VAR_LIB/exports" \
    "$VAR_LIB/tmp" "$VAR_LOG"

# The unit names the binary by its path: follow --prefix.
unit_text=$(<"$REPO/systemd/reportd.service")
if [[ $PREFIX != /usr/local ]]; then
    unit_text=${unit_text//\/usr\/local\//$PREFIX/}
fi
unit_tmp=$(mktemp)
trap 'rm -f "$unit_tmp"' EXIT
printf '%s\n' "$unit_text" >"$unit_tmp"
inst root:root -m 0644 "$unit_tmp" "$UNIT"
echo "installed ${UNIT#"$DESTDIR"}"

if systemd_running; then
    systemctl daemon-reload
    echo "systemctl daemon-reload: done"
fi

cat <<EOF

Next steps:
  1. Edit /etc/reportd/config.yaml (data sources, DingTalk, e-mail); put secrets in
     \${VAR} references and give the variables to the service with: systemctl edit reportd
  2. Check it:      $PREFIX/bin/reportd --config /etc/reportd/config.yaml check
  3. Start it:      systemctl enable --now reportd
  4. Watch it:      $PREFIX/bin/reportd --config /etc/reportd/config.yaml status
                    journalctl -u reportd -f
Run management commands as the service user, so that the files they create stay its own:
  runuser -u reportd -- $PREFIX/bin/reportd --config /etc/reportd/config.yaml task apply -f tasks.yaml
EOF
if [[ $STAGED -eq 1 ]]; then
    echo "(staged into $DESTDIR: no user created, no ownership set, systemctl not run)"
elif systemd_running && systemctl is-active --quiet reportd.service; then
    echo "reportd is running the previous binary: systemctl restart reportd"
fi

# Shared by the project's scripts: where clusters live, and how to run as postgres.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=/usr/lib/postgresql/15/bin
export PATH="$HOME/.cargo/bin:$PATH"

as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi; }

# Clusters live in the project's build folder when the postgres user can
# reach it; a checkout under a private home directory falls back to /tmp.
# AUDIT_BUILD_DIR moves them, so that two sessions can test at once (each
# with its own REGRESS_PORT / INTEGRATION_PORT too).
build_dir() {
  local d="${AUDIT_BUILD_DIR:-$ROOT/build}"
  mkdir -p "$d"
  chmod 755 "$d"
  if ! as_pg test -x "$d" 2>/dev/null; then
    d="/tmp/pg_audit_trail-build-$(echo "$ROOT" | md5sum | cut -c1-8)"
    mkdir -p "$d"; chmod 755 "$d"
  fi
  echo "$d"
}

psql_at() { local port=$1; shift; psql -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }

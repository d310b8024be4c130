#!/usr/bin/env bash
# Set up geo311 on a fresh Debian machine and run it.
#   bash setup.sh demo   install, load the shipped Chicago data into SpatiaLite, serve on :5000
#   bash setup.sh test   install, prepare PostGIS, run the whole test suite on both backends
#   bash setup.sh install
# Extra arguments go to the demo command or to pytest.
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-install}"; shift || true

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_packages=(libsqlite3-mod-spatialite)
if [ "$mode" = test ]; then
  apt_packages+=(postgresql-15-postgis-3 chromium)
fi
echo "== system packages: ${apt_packages[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${apt_packages[@]}" >/dev/null

echo "== python environment (.venv)"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e . --group dev
export PATH="$PWD/.venv/bin:$PATH"

case "$mode" in
  demo)
    exec geo311 demo "$@"
    ;;
  test)
    echo "== PostgreSQL with PostGIS on 127.0.0.1:5432"
    if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
      for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    fi
    db="${GEO311_TEST_DB:-geo311_test}"
    psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" \
      | grep -q 1 || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
    psql -h 127.0.0.1 -U postgres -d "$db" -qc "CREATE EXTENSION IF NOT EXISTS postgis"
    export GEO311_TEST_POSTGIS_URL="${GEO311_TEST_POSTGIS_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/$db}"
    exec python -m pytest --require-all-backends "$@"
    ;;
  install)
    echo "installed: activate with '. .venv/bin/activate', then run 'geo311 --help'"
    ;;
  *)
    echo "usage: bash setup.sh [demo|test|install] [args...]" >&2; exit 2
    ;;
esac

#!/usr/bin/env bash
# PostgreSQL's server binaries for the store tests and `tuneline postgres start`, installed once.
# Already there (on PATH or in /usr/lib/postgresql/<version>/bin): nothing to do. Otherwise, as root on
# Debian/Ubuntu: Debian's package, told not to create and start its own cluster (Tuneline runs its own
# under the state folder, and nothing is left listening). Anywhere else: say what to install.
set -euo pipefail
if command -v pg_ctl >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "PostgreSQL's server is needed for the store tests: install it (Debian: sudo apt-get install postgresql)" >&2
  exit 1
fi
mkdir -p /etc/postgresql-common
grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
  || echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf
echo "installing PostgreSQL (apt-get install postgresql)..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null

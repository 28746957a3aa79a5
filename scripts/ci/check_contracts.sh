#!/usr/bin/env bash
# Contract compatibility of every .proto under protos/ with buf (rules in buf.yaml):
#   1. lint: every package is versioned and sits in its folder (a new event version is a new .v2 package);
#   2. breaking, against contracts/baseline/: the contract of the last release, committed, so the check
#      works on any clone (there is no release tag to compare with, and CI's clean clone of main has no
#      other branch to take a merge base from). `make contracts-baseline` moves it at a release;
#   3. breaking, against HEAD, when protos/ has uncommitted changes: an edit must not break what is
#      already committed either, fields added since the release included.
# Usage: scripts/ci/check_contracts.sh   (BUF=path/to/buf; exit status non-zero on any finding)
set -euo pipefail
cd "$(dirname "$0")/../.."
buf="${BUF:?set BUF to the buf binary (make contracts installs it)}"
"$buf" lint
echo "contracts: protos/ lint clean (versioned packages)"
"$buf" breaking --against contracts/baseline
echo "contracts: protos/ compatible with the released contract (contracts/baseline)"
if git rev-parse --verify -q HEAD >/dev/null 2>&1 && [ -n "$(git status --porcelain -- protos)" ]; then
  "$buf" breaking --against ".git#ref=HEAD,subdir=protos"
  echo "contracts: the uncommitted changes to protos/ are compatible with HEAD"
fi

#!/usr/bin/env bash
# Regenerates the committed *_pb2.py / *_pb2.pyi / *_pb2_grpc.py beside the .proto sources.
# Usage: scripts/gen_protos.sh [OUT_DIR]   (OUT_DIR defaults to protos/, in place)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-protos}")"
py="${PYTHON:-$PWD/.venv/bin/python}"
mkdir -p "$out"
mapfile -t files < <(cd protos && find tuneline -name '*.proto' | sort)
(cd protos && "$py" -m grpc_tools.protoc -I. --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${files[@]}")
# Only services get *_grpc.py modules; drop the empty ones protoc writes for message-only files.
for f in $(find "$out/tuneline" -name '*_pb2_grpc.py'); do grep -q '^class .*Stub' "$f" || rm -f "$f"; done
for d in $(cd "$out" && find tuneline -type d); do touch "$out/$d/__init__.py"; done

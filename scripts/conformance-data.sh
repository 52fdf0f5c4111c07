#!/usr/bin/env bash
# Writes the ONNX backend node test cases to target/conformance/ for tests/conformance.rs.
#
#   scripts/conformance-data.sh
#
# Idempotent. Creates .venv-conformance/ (gitignored) with the pinned packages of
# scripts/conformance-requirements.txt (onnx, numpy and their dependencies, no torch: about
# 40 MB of wheels from PyPI, 134 MB installed), then runs scripts/extract_node_tests.py (34 MB
# of data, ~25 s). Each step is skipped when a stamp says it was done with the same
# interpreter, pins and extraction script.
# Needs CPython 3.11 (python3.11 or python3; override with PYTHON=...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.venv-conformance REQS=scripts/conformance-requirements.txt
EXTRACT=scripts/extract_node_tests.py OUT=target/conformance
log() { printf '[conformance-data] %s\n' "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

PY="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
[ -n "$PY" ] || die "no python3.11 or python3 on PATH (set PYTHON=/path/to/python3.11)"
PYVER="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
[[ "$PYVER" == 3.11.* ]] || die "need CPython 3.11, '$PY' is $PYVER (set PYTHON=...)"

VENV_STAMP="python=$PYVER reqs=$(sha256sum "$REQS" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.stamp" 2>/dev/null)" = "$VENV_STAMP" ]; then
    log "$VENV is up to date"
else
    log "creating $VENV ($PY, $PYVER)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
        --no-deps --only-binary=:all: -r "$REQS"
    "$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null \
        || die "pip check failed: $REQS misses a dependency"
    printf '%s\n' "$VENV_STAMP" > "$VENV/.stamp"
fi

DATA_STAMP="$VENV_STAMP extract=$(sha256sum "$EXTRACT" | cut -d' ' -f1)"
if [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$DATA_STAMP" ] && [ -f "$OUT/manifest.json" ]; then
    log "$OUT is up to date ($(ls "$OUT" | wc -l) entries)"
else
    "$VENV/bin/python" "$EXTRACT" "$OUT"
    printf '%s\n' "$DATA_STAMP" > "$OUT/.stamp"
fi

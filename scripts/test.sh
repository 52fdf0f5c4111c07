#!/usr/bin/env bash
# The project's full test command: writes the ONNX backend node test data (a pinned Python
# environment, see scripts/conformance-data.sh), then runs every test, the ignored
# conformance test included. Extra arguments go to cargo test (e.g. --release).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/conformance-data.sh
cargo test --locked "$@" -- --include-ignored

#!/usr/bin/env bash
# Coverage-guided fuzzing of everything tfe reads from a file or a peer (docs/FUZZING.md).
# Installs cargo-fuzz if missing and runs on the stable toolchain (RUSTC_BOOTSTRAP lets it
# pass the sanitizer flags).
#
#   scripts/fuzz.sh seeds                 # remake fuzz/seeds/ from the fixtures (committed)
#   scripts/fuzz.sh smoke                 # every target for 10 s (CI: unoptimised and without
#                                         # ASan, to build in minutes; panics, aborts, leaks of
#                                         # memory past the limit and hangs still count)
#   scripts/fuzz.sh run SECONDS [TARGET]  # every target (or one) for SECONDS, one per core
#
# A crash is saved under fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ with
# the fix, so that tests/fuzz_replay.rs replays it in every test run.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(plan_file share_file npy onnx config frames)
export RUSTC_BOOTSTRAP=1
# How the targets are built: optimised with AddressSanitizer for real runs.
BUILD=(-O)

seeds() {
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    rm -rf fuzz/seeds && mkdir -p "${TARGETS[@]/#/fuzz/seeds/}"
    cargo build --release --locked --bin tfe-convert --bin tfe-pki
    for m in mlp cnn; do
        cp "fixtures/$m/model.onnx" "fuzz/seeds/onnx/$m.onnx"
        target/release/tfe-convert "fixtures/$m/model.onnx" -o "fuzz/seeds/plan_file/$m.plan" >/dev/null
        target/release/tfe-convert "fixtures/$m/model.onnx" --share -o "$tmp/$m.plan" >/dev/null
        cp "$tmp/$m.party0.plan" "fuzz/seeds/share_file/$m.party0.plan"
        cp "fixtures/$m/input_b1.npy" "fuzz/seeds/npy/$m-input.npy"
    done
    cp fixtures/ort_cases/convtranspose_same_lower/model.onnx fuzz/seeds/onnx/convtranspose.onnx
    target/release/tfe-pki --inputters a,b --receiver "$tmp/pki" >/dev/null
    cp "$tmp/pki/parties.json" fuzz/seeds/config/parties.json
    # Frames: a hello then a refusal, as a party's listener reads them from a client.
    python3 - fuzz/seeds/frames/hello-refusal.bin <<'PY'
import struct, sys
session = bytes(range(16))
def frame(kind, seq, words):
    return bytes([kind]) + session + struct.pack('<QI', seq, len(words)) + b''.join(struct.pack('<Q', w) for w in words)
reason = b'busy'
text = [len(reason), int.from_bytes(reason.ljust(8, b'\0'), 'little')]
open(sys.argv[1], 'wb').write(frame(1, 0, [3]) + frame(2, 1, [1, 2, 3]) + frame(4, 2, [1500] + text))
PY
}

run() {
    local seconds=$1 jobs=() failed=0
    shift
    local targets=("${@:-${TARGETS[@]}}")
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
    cargo fuzz build "${BUILD[@]}" --fuzz-dir fuzz
    for t in "${targets[@]}"; do
        mkdir -p "fuzz/corpus/$t" "fuzz/regressions/$t"
        # The growing corpus first (new inputs go there), then the seeds and the regressions.
        cargo fuzz run "${BUILD[@]}" --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" "fuzz/regressions/$t" -- \
            -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
            >"fuzz/$t.log" 2>&1 &
        jobs+=($!)
        # One target per core at a time.
        if (( ${#jobs[@]} >= $(nproc) )); then wait "${jobs[0]}" || failed=1; jobs=("${jobs[@]:1}"); fi
    done
    for j in "${jobs[@]}"; do wait "$j" || failed=1; done
    for t in "${targets[@]}"; do
        grep -E "^stat::number_of_executed_units|^Done|SUMMARY|ERROR" "fuzz/$t.log" | sed "s/^/$t: /" || true
    done
    return $failed
}

case "${1:-}" in
    seeds) seeds ;;
    smoke) BUILD=(--dev -s none); run 10 ;;
    run) shift; run "$@" ;;
    *) sed -n 2,12p "$0"; exit 2 ;;
esac

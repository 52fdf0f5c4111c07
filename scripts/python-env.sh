#!/usr/bin/env bash
# Create (or check) the pinned Python environment used to generate fixtures/.
#
#   scripts/python-env.sh            # create .venv if missing/out of date, then verify it
#   scripts/python-env.sh --force    # delete and recreate .venv
#
# The venv lives at <repo>/.venv (gitignored). Exact package versions come from
# scripts/python-requirements.txt and are installed with --no-deps, so the
# environment contains exactly that list. Idempotent: a stamp file records the
# hash of the requirements list and the interpreter version; when it matches,
# nothing is installed and only the verification step runs.
#
# Needs: CPython 3.11 (python3.11 or python3; override with PYTHON=...),
# network access to PyPI (~2.5 GB of wheels, mostly the CUDA libraries that the
# PyPI torch wheel links against; ~4.7 GB on disk).
set -euo pipefail

log() { printf '[python-env] %s\n' "$*"; }
die() { printf '[python-env] ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQS="$ROOT/scripts/python-requirements.txt"
STAMP="$VENV/.tfe-python-env.stamp"

FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $arg (try --help)" ;;
    esac
done

[ -f "$REQS" ] || die "missing $REQS"

# --- pick the interpreter ----------------------------------------------------
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
    PY="python3.11"
else
    PY="python3"
fi
command -v "$PY" >/dev/null 2>&1 || die "interpreter '$PY' not found"
PYVER="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
case "$PYVER" in
    3.11.*) ;;
    *) die "need CPython 3.11, '$PY' is $PYVER (set PYTHON=/path/to/python3.11)" ;;
esac
log "interpreter: $(command -v "$PY") ($PYVER)"

WANT_STAMP="python=$PYVER reqs=$(sha256sum "$REQS" | cut -d' ' -f1)"

# --- create / reuse the venv -------------------------------------------------
if [ "$FORCE" = 1 ] && [ -d "$VENV" ]; then
    log "--force: removing $VENV"
    rm -rf "$VENV"
fi

if [ -d "$VENV" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ]; then
    log "$VENV is up to date ($WANT_STAMP); skipping install"
else
    if [ -d "$VENV" ]; then
        log "$VENV was made for a different interpreter or requirements list (or its install was interrupted): recreating it"
        rm -rf "$VENV"
    fi
    log "creating venv: $PY -m venv $VENV"
    "$PY" -m venv "$VENV"
    log "installing pinned packages from $REQS (--no-deps --only-binary=:all:)"
    "$VENV/bin/python" -m pip install \
        --disable-pip-version-check --no-input --progress-bar off \
        --no-deps --only-binary=:all: \
        -r "$REQS"
    printf '%s\n' "$WANT_STAMP" > "$STAMP"
    log "install done"
fi

# --- verify ------------------------------------------------------------------
log "verifying: imports, versions, CPU torch.onnx.export(dynamo=False) -> onnxruntime"
"$VENV/bin/python" - "$REQS" <<'PYEOF'
import re
import sys
import tempfile
import warnings
from importlib import metadata

# Every pinned distribution must be installed at exactly the pinned version.
pins = {}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        name, ver = line.split("==")
        pins[name.strip()] = ver.strip()
bad = []
for name, ver in pins.items():
    try:
        got = metadata.version(name)
    except metadata.PackageNotFoundError:
        got = None
    if got != ver:
        bad.append(f"{name}: want {ver}, got {got}")
if bad:
    sys.exit("version mismatch:\n  " + "\n  ".join(bad))

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
import torch

for mod in (np, onnx, ort, sklearn, torch):
    print(f"[python-env]   {mod.__name__:12s} {mod.__version__}")
print(f"[python-env]   torch CUDA available: {torch.cuda.is_available()} (CPU is all that is used)")

torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 3)
).eval()
x = torch.rand(2, 1, 4, 4)
with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    path = f"{d}/probe.onnx"
    torch.onnx.export(
        model, (x,), path, dynamo=False, opset_version=17,
        input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
with torch.no_grad():
    want = model(x).numpy()
err = float(np.abs(got - want).max())
ops = [n.op_type for n in m.graph.node]
print(f"[python-env]   probe export ops={ops} max|ort-torch|={err:.2e}")
if err > 1e-5:
    sys.exit("onnxruntime output differs from torch")
try:
    import onnxscript  # noqa: F401
    print("[python-env]   note: onnxscript is installed (not required)")
except ImportError:
    pass
PYEOF
log "OK: $VENV is ready (run: .venv/bin/python fixtures/make_fixtures.py)"

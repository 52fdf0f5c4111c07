#!/usr/bin/env bash
# Create (or check) the pinned Python environment in which SecretFlow SPU runs beside tfe.
#
#   scripts/peers/spu-env.sh           # .venv-spu (spu 0.9.5, jax/jaxlib 0.4.34, onnx, numpy)
#   scripts/peers/spu-env.sh --force   # delete and recreate the venv
#
# then:  .venv-spu/bin/python scripts/peers/spu_bench.py --runs 10 > spu.jsonl
#
# .venv-spu lives at <repo>/.venv-spu (gitignored). Exact package versions come from
# scripts/peers/spu-requirements.txt and are installed with --no-deps --only-binary=:all:,
# so the environment contains exactly that list. Idempotent: a stamp file records the hash
# of the requirements list and the interpreter version; when it matches, nothing is
# installed and only the verification step runs (a few seconds). When only the list
# changed, the existing venv is brought in line (changed pins installed, unlisted packages
# removed) instead of being rebuilt.
#
# Needs: CPython 3.11 (python3.11 or python3; override with PYTHON=...), network access to
# PyPI, an x86_64 CPU with AVX (SPU's wheel checks). ~210 MB of wheels (spu 75 MB, jaxlib
# 86 MB, scipy 35 MB), 1.1 GB on disk.
set -euo pipefail

log() { printf '[spu-env] %s\n' "$*"; }
die() { printf '[spu-env] ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $arg (try --help)" ;;
    esac
done
VENV="$ROOT/.venv-spu"
REQS="$ROOT/scripts/peers/spu-requirements.txt"
STAMP="$VENV/.tfe-spu-env.stamp"

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

pip_install() {
    "$VENV/bin/python" -m pip install \
        --disable-pip-version-check --no-input --progress-bar off \
        --no-deps --only-binary=:all: \
        -r "$REQS"
}

HAVE_STAMP=""
[ -f "$STAMP" ] && HAVE_STAMP="$(cat "$STAMP")"
if [ -d "$VENV" ] && [ "$HAVE_STAMP" = "$WANT_STAMP" ]; then
    log "$VENV is up to date ($WANT_STAMP); skipping install"
elif [ -d "$VENV" ] && [ "${HAVE_STAMP%% *}" = "python=$PYVER" ]; then
    # Same interpreter, different list: sync in place.
    log "$VENV was made from another version of $(basename "$REQS"): syncing it"
    rm -f "$STAMP"
    pip_install
    "$VENV/bin/python" - "$REQS" <<'PYEOF'
import re, subprocess, sys
from importlib import metadata
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
want = {canon(l.split("#", 1)[0].split("==")[0].strip()) for l in open(sys.argv[1]) if "==" in l.split("#", 1)[0]}
extra = sorted({d.metadata["Name"] for d in metadata.distributions()
                if canon(d.metadata["Name"]) not in want | {"pip", "setuptools"}})
if extra:
    print("[spu-env] removing packages not in the list: " + " ".join(extra))
    subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *extra])
PYEOF
    printf '%s\n' "$WANT_STAMP" > "$STAMP"
    log "sync done"
else
    if [ -d "$VENV" ]; then
        log "$VENV was made for a different interpreter (or its install was interrupted): recreating it"
        rm -rf "$VENV"
    fi
    log "creating venv: $PY -m venv $VENV"
    "$PY" -m venv "$VENV"
    log "installing pinned packages from $REQS (--no-deps --only-binary=:all:)"
    pip_install
    printf '%s\n' "$WANT_STAMP" > "$STAMP"
    log "install done"
fi

# --- verify ------------------------------------------------------------------
log "verifying: pins, pip check, imports, a tiny ABY3/FM64 job in SPU's simulator, reading a fixture"
"$VENV/bin/python" -m pip check --disable-pip-version-check >/dev/null \
    || die "pip check failed: $REQS misses a dependency (run: $VENV/bin/python -m pip check)"
"$VENV/bin/python" - "$REQS" "$ROOT" <<'PYEOF' 2> >(grep -v '\[info\]' >&2)
import os
import sys
from importlib import metadata

os.environ.setdefault("JAX_PLATFORMS", "cpu")

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

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import spu
import spu.libspu as libspu
import spu.utils.simulation as spsim

for mod in (spu, jax, np, onnx):
    print(f"[spu-env]   {mod.__name__:6s} {mod.__version__}")
print(f"[spu-env]   jaxlib {metadata.version('jaxlib')}")
spu.check_cpu_feature()

cfg = libspu.RuntimeConfig(protocol=libspu.ProtocolKind.ABY3, field=libspu.FieldType.FM64,
                           fxp_fraction_bits=18)
sim = spsim.Simulator(3, cfg)
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 16)).astype(np.float32)
w = rng.standard_normal((16, 4)).astype(np.float32) / 4
fn = spsim.sim_jax(sim, lambda x, w: jnp.maximum(x @ w, 0.0))
got = np.asarray(fn(x, w))
err = float(np.abs(got - np.maximum(x @ w, 0.0)).max())
print(f"[spu-env]   probe relu(x @ w), ABY3 FM64 f=18, 3 parties, both secret: max|spu-numpy|={err:.2e}")
if err > 1e-3:
    sys.exit("SPU's output differs from numpy's")

m = onnx.load(os.path.join(sys.argv[2], "fixtures", "mlp_a", "model.onnx"))
print(f"[spu-env]   fixtures/mlp_a/model.onnx: {[n.op_type for n in m.graph.node]}")
PYEOF
log "OK: $VENV is ready (run: .venv-spu/bin/python scripts/peers/spu_bench.py --runs 10 > spu.jsonl)"

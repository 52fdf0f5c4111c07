#!/usr/bin/env bash
# Create (or check) a pinned Python environment used to generate fixtures/.
#
#   scripts/python-env.sh            # .venv    (torch, onnxscript, scikit-learn, skl2onnx,
#                                    #           transformers, timm, torchvision, xgboost, onnxmltools)
#   scripts/python-env.sh --tf       # .venv-tf (tensorflow-cpu, keras, tf2onnx)
#   scripts/python-env.sh --force    # delete and recreate the venv (combine with --tf)
#
# .venv lives at <repo>/.venv, .venv-tf at <repo>/.venv-tf (both gitignored). Exact
# package versions come from scripts/python-requirements.txt (resp.
# scripts/python-requirements-tf.txt) and are installed with --no-deps, so the
# environment contains exactly that list. Idempotent: a stamp file records the hash
# of the requirements list and the interpreter version; when it matches, nothing is
# installed and only the verification step runs. When only the list changed, the
# existing venv is brought in line (changed pins installed, unlisted packages
# removed) instead of being rebuilt.
#
# Needs: CPython 3.11 (python3.11 or python3; override with PYTHON=...), network
# access to PyPI. .venv: ~2.5 GB of wheels (mostly the CUDA libraries that the PyPI
# torch wheel links against), ~5.2 GB on disk. .venv-tf: ~0.4 GB of wheels, ~1.8 GB.
set -euo pipefail

log() { printf '[python-env] %s\n' "$*"; }
die() { printf '[python-env] ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIND=torch
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --tf) KIND=tf ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $arg (try --help)" ;;
    esac
done
if [ "$KIND" = tf ]; then
    VENV="$ROOT/.venv-tf"
    REQS="$ROOT/scripts/python-requirements-tf.txt"
else
    VENV="$ROOT/.venv"
    REQS="$ROOT/scripts/python-requirements.txt"
fi
STAMP="$VENV/.tfe-python-env.stamp"

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
    # Same interpreter, different list: sync in place (no multi-GB reinstall).
    log "$VENV was made from another version of $(basename "$REQS"): syncing it"
    rm -f "$STAMP"
    pip_install
    "$VENV/bin/python" - "$REQS" <<'PYEOF'
import re, subprocess, sys
from importlib import metadata
canon = lambda n: re.sub(r"[-_.]+", "-", n).lower()
want = {canon(l.split("#", 1)[0].split("==")[0].strip()) for l in open(sys.argv[1]) if "==" in l.split("#", 1)[0]}
extra = sorted({d.metadata["Name"] for d in metadata.distributions()
                if canon(d.metadata["Name"]) not in want | {"pip"}})
if extra:
    print("[python-env] removing packages not in the list: " + " ".join(extra))
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
if [ "$KIND" = tf ]; then
    log "verifying: imports, versions, Keras -> tf2onnx -> onnxruntime, frozen GraphDef -> TensorFlow"
else
    log "verifying: imports, versions, CPU torch.onnx.export(dynamo=False and dynamo=True) -> onnxruntime, skl2onnx"
fi
"$VENV/bin/python" - "$REQS" "$KIND" <<'PYEOF'
import os
import sys
import tempfile
import warnings
from importlib import metadata

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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


def check_onnx(path, x, want, what):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    err = float(np.abs(got - want).max())
    ops = [n.op_type for n in m.graph.node]
    print(f"[python-env]   {what}: ops={ops} max|ort-ref|={err:.2e}")
    if err > 1e-5:
        sys.exit(f"{what}: onnxruntime output differs from the reference")


if sys.argv[2] == "tf":
    import keras
    import tensorflow as tf
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    for mod in (np, onnx, ort, sklearn, tf, keras, tf2onnx):
        print(f"[python-env]   {mod.__name__:12s} {mod.__version__}")
    keras.utils.set_random_seed(0)
    inp = keras.Input((4, 4, 1), name="input")
    out = keras.layers.Dense(3)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3, padding="same")(inp)))
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).random((2, 4, 4, 1), dtype=np.float32)
    want = model(x).numpy()
    spec = (tf.TensorSpec((None, 4, 4, 1), tf.float32, name="input"),)
    with tempfile.TemporaryDirectory() as d:
        tf2onnx.convert.from_keras(model, input_signature=spec, output_path=f"{d}/probe.onnx")
        check_onnx(f"{d}/probe.onnx", x, want, "probe tf2onnx")
    frozen = convert_variables_to_constants_v2(tf.function(model, input_signature=list(spec)).get_concrete_function())
    gd = frozen.graph.as_graph_def()
    g = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(gd, name=""), [])
    fn = g.prune(feeds=g.graph.get_tensor_by_name(frozen.inputs[0].name),
                 fetches=g.graph.get_tensor_by_name(frozen.outputs[0].name))
    err = float(np.abs(fn(tf.constant(x)).numpy() - want).max())
    print(f"[python-env]   probe frozen GraphDef: {len(gd.node)} nodes, max|tf-keras|={err:.2e}")
    if err > 1e-5:
        sys.exit("frozen graph output differs from Keras")
else:
    os.environ["HF_HUB_OFFLINE"] = "1"  # the model zoo is built from configs, never downloaded
    import onnxmltools
    import onnxscript
    import skl2onnx
    import timm
    import torch
    import torchvision
    import transformers
    import xgboost

    for mod in (np, onnx, ort, sklearn, torch, onnxscript, skl2onnx, transformers, timm, torchvision,
                xgboost, onnxmltools):
        print(f"[python-env]   {mod.__name__:12s} {mod.__version__}")
    print(f"[python-env]   torch CUDA available: {torch.cuda.is_available()} (CPU is all that is used)")

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 3)
    ).eval()
    x = torch.rand(2, 1, 4, 4)
    with torch.no_grad():
        want = model(x).numpy()
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (x,), f"{d}/ts.onnx", dynamo=False, opset_version=17,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
        check_onnx(f"{d}/ts.onnx", x.numpy(), want, "probe export(dynamo=False)")
        import logging
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(
            model, (x,), f"{d}/dynamo.onnx", dynamo=True, external_data=False, verbose=False,
            input_names=["input"], output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
        )
        check_onnx(f"{d}/dynamo.onnx", x.numpy(), want, "probe export(dynamo=True)")

    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    xs = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    lr = LinearRegression().fit(xs, xs.sum(1))
    with tempfile.TemporaryDirectory() as d:
        onnx.save(to_onnx(lr, xs[:1]), f"{d}/skl.onnx")
        check_onnx(f"{d}/skl.onnx", xs, lr.predict(xs).reshape(-1, 1), "probe skl2onnx")
PYEOF
if [ "$KIND" = tf ]; then
    log "OK: $VENV is ready (run: .venv-tf/bin/python fixtures/make_tf_fixtures.py)"
else
    log "OK: $VENV is ready (run: .venv/bin/python fixtures/make_fixtures.py; .venv/bin/python fixtures/make_exporter_fixtures.py; .venv/bin/python fixtures/make_model_zoo_fixtures.py)"
fi

#!/usr/bin/env python3
"""SecretFlow SPU on tfe's benchmark models, measured the way examples/bench.rs measures tfe.

    scripts/peers/spu-env.sh && .venv-spu/bin/python scripts/peers/spu_bench.py --runs 10 > spu.jsonl

For each row (model, batch) -- by default mlp_a and lenet at batch 1 and 64, cnn_bn at batch 1,
the rows of examples/bench.rs -- the fixture's model.onnx is read with onnx and its op sequence
is run as a JAX function with the same weights, compiled by SPU and executed by three SPU
parties with the ABY3 protocol over FM64 with 18 fractional bits. Weights and input are both
secret: the weights are secret-shared once when the row is set up, the input at every request.
One warm-up request, then --runs timed requests; a request is what tfe's `Session::predict`
is: share the input, run the three parties, reconstruct the output.

stdout: one JSON object per row (fields: model, batch, online_median_ms, online_min_ms, bytes,
rounds, max_abs_err, config). stderr: progress, then a markdown table.

--mode embedded (default): the three parties are threads of this process linked by SPU's
in-memory links (what spu.utils.simulation.Simulator does, but with the runtimes, links and
weight shares kept across requests, as tfe's embedded session keeps its parties).
--mode processes: the three parties are child processes linked by SPU's brpc links on
127.0.0.1; this process is the client that shares the input and reconstructs the output.

bytes and rounds come from SPU's own link statistics, read from the profile SPU logs when a
runtime is built with enable_pphlo_profile (one extra, untimed request per row): bytes is the
sum over the three parties of "total send bytes" (tfe's bytes are likewise the sum over its
endpoints), rounds the largest "send actions" of one party (messages sent; it equals the
rounds when a party sends one message a round, as ABY3's resharing does, and bounds them from
above otherwise). SPU makes the input shares locally in the client (Io.make_shares), so its
bytes exclude the input upload that tfe's bytes include. --no-stats skips that request.
"""

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Keep stdout for the JSON lines only: whatever else writes to file descriptor 1 (SPU's C++
# logging, jax warnings) goes to stderr.
_JSON_OUT = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import spu  # noqa: E402
import spu.api as spu_api  # noqa: E402
import spu.libspu as libspu  # noqa: E402
import spu.utils.frontend as spu_fe  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
DEFAULT_ROWS = ["mlp_a", "lenet", "cnn_bn"]
TITLES = {"mlp_a": "Network-A MLP 784-128-128-10", "lenet": "LeNet", "cnn_bn": "digits CNN"}
FRACTION_BITS = 18


def default_batches(model):
    """The batch sizes examples/bench.rs measures for a fixture."""
    return [1, 64] if model in ("mlp_a", "lenet") else [1]


def log(msg):
    print(f"[spu_bench] {msg}", file=sys.stderr, flush=True)


# --- ONNX -> JAX ------------------------------------------------------------------------


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Model:
    """A fixture's ONNX graph as a JAX function of (input, *weights).

    The model owner's plaintext preparation, done before the weights are shared (tfe's
    converter does the same at convert time): BatchNormalization in inference mode right after
    a Conv is folded into that Conv's weight and bias. Everything else is run op by op, in the
    graph's order; shape arithmetic (Shape, Gather, Unsqueeze, Concat on shapes) is evaluated
    on public shapes while tracing, as tfe's converter folds it.
    """

    SUPPORTED = {"Gemm", "Relu", "Conv", "MaxPool", "AveragePool", "BatchNormalization",
                 "Flatten", "Reshape", "Shape", "Gather", "Unsqueeze", "Concat", "Constant"}

    def __init__(self, path):
        m = onnx.load(str(path))
        g = m.graph
        self.ops = [n.op_type for n in g.node]
        unsupported = sorted(set(self.ops) - self.SUPPORTED)
        if unsupported:
            raise SystemExit(f"{path}: ops not ported to JAX here: {unsupported}")
        init = {t.name: numpy_helper.to_array(t).astype(np.float32)
                if t.data_type == onnx.TensorProto.FLOAT else numpy_helper.to_array(t)
                for t in g.initializer}
        init_names = set(init)
        self.input_name = next(i.name for i in g.input if i.name not in init_names)
        self.output_name = g.output[0].name
        consumers = {}
        for n in g.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        nodes = list(g.node)
        # Fold Conv -> BatchNormalization.
        folded = []
        skip = set()
        for k, n in enumerate(nodes):
            if id(n) in skip:
                continue
            if n.op_type == "Conv":
                users = consumers.get(n.output[0], [])
                if len(users) == 1 and users[0].op_type == "BatchNormalization":
                    bn = users[0]
                    a = attrs(bn)
                    assert not a.get("training_mode", 0)
                    scale, bias, mean, var = (init[i] for i in bn.input[1:5])
                    s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
                    w = init[n.input[1]]
                    b = init[n.input[2]] if len(n.input) > 2 else np.zeros(w.shape[0], np.float32)
                    wname, bname = n.input[1] + "@bn", (n.input[2] if len(n.input) > 2 else n.name + ".bias") + "@bn"
                    init[wname] = (w * s[:, None, None, None]).astype(np.float32)
                    init[bname] = ((b - mean) * s + bias).astype(np.float32)
                    conv = onnx.helper.make_node("Conv", [n.input[0], wname, bname], [bn.output[0]],
                                                 name=n.name + "+bn")
                    conv.attribute.extend(n.attribute)
                    folded.append(conv)
                    skip.add(id(bn))
                    continue
            folded.append(n)
        self.nodes = folded
        used = {i for n in self.nodes for i in n.input}
        # Secret weights: the float initializers the (folded) graph reads; integer
        # initializers (shapes) stay public constants.
        self.weight_names = [k for k in init if k in used and init[k].dtype == np.float32]
        self.weights = [init[k] for k in self.weight_names]
        self.public = {k: v for k, v in init.items() if k in used and k not in self.weight_names}

    def fn(self, x, *weights):
        env = dict(self.public)
        env.update(zip(self.weight_names, weights))
        env[self.input_name] = x
        for n in self.nodes:
            ins = [env[i] if i else None for i in n.input]
            env[n.output[0]] = self.run_node(n, ins)
        return env[self.output_name]

    @staticmethod
    def run_node(n, ins):
        a = attrs(n)
        op = n.op_type
        if op == "Gemm":
            A, B = ins[0], ins[1]
            assert a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = A @ B
            return y + ins[2] if len(ins) > 2 and ins[2] is not None else y
        if op == "Relu":
            return jnp.maximum(ins[0], 0.0)
        if op == "Conv":
            x, w = ins[0], ins[1]
            nsp = w.ndim - 2
            pads = a.get("pads", [0] * 2 * nsp)
            assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            y = jax.lax.conv_general_dilated(
                x, w,
                window_strides=a.get("strides", [1] * nsp),
                padding=[(pads[i], pads[i + nsp]) for i in range(nsp)],
                rhs_dilation=a.get("dilations", [1] * nsp),
                dimension_numbers=("NCHW", "OIHW", "NCHW"),
                feature_group_count=a.get("group", 1),
            )
            if len(ins) > 2 and ins[2] is not None:
                y = y + ins[2].reshape((1, -1) + (1,) * nsp)
            return y
        if op in ("MaxPool", "AveragePool"):
            x = ins[0]
            k = a["kernel_shape"]
            nsp = len(k)
            strides = a.get("strides", [1] * nsp)
            pads = a.get("pads", [0] * 2 * nsp)
            assert not a.get("ceil_mode", 0) and all(d == 1 for d in a.get("dilations", [1] * nsp))
            if op == "AveragePool":
                assert a.get("count_include_pad", 0) or not any(pads)
            if list(k) == list(strides) and not any(pads) and all(
                    x.shape[2 + i] % k[i] == 0 for i in range(nsp)):
                # Non-overlapping windows that tile the image: a reshape and a reduction over
                # the window axes, which SPU runs as a vectorised tree (same bytes and rounds as
                # reduce_window, about 3x less time in SPU 0.9.5).
                shape = list(x.shape[:2])
                for i in range(nsp):
                    shape += [x.shape[2 + i] // k[i], k[i]]
                xs = x.reshape(shape)
                axes = tuple(3 + 2 * i for i in range(nsp))
                if op == "MaxPool":
                    return jnp.max(xs, axis=axes)
                return jnp.sum(xs, axis=axes) * (1.0 / float(np.prod(k)))
            window = (1, 1, *k)
            wstrides = (1, 1, *strides)
            padding = [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)]
            if op == "MaxPool":
                return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, wstrides, padding)
            s = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, wstrides, padding)
            return s * (1.0 / float(np.prod(k)))
        if op == "Flatten":
            ax = a.get("axis", 1)
            x = ins[0]
            return x.reshape((int(np.prod(x.shape[:ax])), -1))
        if op == "Shape":
            return np.array(ins[0].shape, dtype=np.int64)
        if op == "Constant":
            return numpy_helper.to_array(a["value"])
        if op == "Gather":
            return np.take(np.asarray(ins[0]), np.asarray(ins[1]), axis=a.get("axis", 0))
        if op == "Unsqueeze":
            axes = a.get("axes", None)
            if axes is None:
                axes = [int(v) for v in np.asarray(ins[1]).reshape(-1)]
            return np.expand_dims(np.asarray(ins[0]), tuple(axes))
        if op == "Concat":
            return np.concatenate([np.asarray(v) for v in ins], axis=a["axis"])
        if op == "Reshape":
            x = ins[0]
            shape = [int(v) for v in np.asarray(ins[1])]
            if not a.get("allowzero", 0):
                shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
            return x.reshape(shape)
        raise AssertionError(op)


def fixture_rows(model, batch):
    """`batch` rows taken cyclically from the fixture's batch-32 input and expected output,
    as examples/bench.rs takes them."""
    d = FIXTURES / model
    x = np.load(d / "input_b32.npy").astype(np.float32)
    want = np.load(d / "expected_b32.npy").astype(np.float32)
    idx = np.arange(batch) % x.shape[0]
    return x[idx], want[idx]


# --- SPU -----------------------------------------------------------------------------


def runtime_config(profile=False):
    cfg = libspu.RuntimeConfig(protocol=libspu.ProtocolKind.ABY3, field=libspu.FieldType.FM64,
                               fxp_fraction_bits=FRACTION_BITS)
    cfg.enable_pphlo_profile = profile
    return cfg


def compile_model(model, x, weights):
    """SPU's executable for model.fn, every argument secret."""
    n = 1 + len(weights)
    in_names = [f"in{i}" for i in range(n)]
    executable, _ = spu_fe.compile(
        spu_fe.Kind.JAX, model.fn, [x, *weights], {}, in_names,
        [libspu.Visibility.VIS_SECRET] * n,
        lambda outs: [f"out{i}" for i in range(len(outs))],
    )
    return executable


class Embedded:
    """Three SPU parties as threads of this process over in-memory links; runtimes, links and
    the weight shares live as long as the object (one session)."""

    def __init__(self, executable, weights, profile=False):
        self.exe = executable
        self.cfg = runtime_config(profile)
        self.io = spu_api.Io(3, self.cfg)
        desc = libspu.link.Desc()
        for r in range(3):
            desc.add_party(f"id_{r}", f"thread_{r}")
        self.pool = ThreadPoolExecutor(3)
        # Each party's runtime construction talks to the others (an all-gather): in parallel.
        self.rts = list(self.pool.map(
            lambda r: spu_api.Runtime(libspu.link.create_mem(desc, r), libspu.RuntimeConfig(self.cfg)),
            range(3)))
        # Setup: the model owner shares the weights once.
        for i, w in enumerate(weights):
            shares = self.io.make_shares(w, libspu.Visibility.VIS_SECRET)
            for r in range(3):
                self.rts[r].set_var(executable.input_names[1 + i], shares[r])

    def _party(self, r, share):
        rt = self.rts[r]
        rt.set_var(self.exe.input_names[0], share)
        rt.run(self.exe)
        return rt.get_var(self.exe.output_names[0])

    def predict(self, x):
        shares = self.io.make_shares(x, libspu.Visibility.VIS_SECRET)
        futs = [self.pool.submit(self._party, r, shares[r]) for r in range(3)]
        outs = [f.result() for f in futs]
        return self.io.reconstruct(outs)

    def close(self):
        self.pool.shutdown()


def _party_process(rank, addrs, exe_bytes, weight_shares, profile, conn):
    """A child process: one SPU party over brpc links on loopback."""
    import spu.api as spu_api  # noqa: F811
    import spu.libspu as libspu  # noqa: F811

    exe = libspu.Executable()
    exe.ParseFromString(exe_bytes)
    desc = libspu.link.Desc()
    desc.recv_timeout_ms = 120_000
    for r, a in enumerate(addrs):
        desc.add_party(f"id_{r}", a)
    link = libspu.link.create_brpc(desc, rank)
    rt = spu_api.Runtime(link, runtime_config(profile))
    for i, (meta, chunks) in enumerate(weight_shares):
        s = libspu.Share()
        s.meta, s.share_chunks = meta, chunks
        rt.set_var(exe.input_names[1 + i], s)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            break
        s = libspu.Share()
        s.meta, s.share_chunks = msg
        rt.set_var(exe.input_names[0], s)
        rt.run(exe)
        out = rt.get_var(exe.output_names[0])
        conn.send((out.meta, out.share_chunks))
    link.stop_link()


class Processes:
    """Three SPU parties as child processes over brpc links on 127.0.0.1; this process is the
    client (shares the input, reconstructs the output)."""

    def __init__(self, executable, weights, profile=False, base_port=None):
        import multiprocessing as mp
        import socket

        self.cfg = runtime_config(profile)
        self.io = spu_api.Io(3, self.cfg)
        ports = []
        socks = []
        for _ in range(3):  # free ports (the small race with other programs is accepted)
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
            socks.append(s)
        for s in socks:
            s.close()
        addrs = [f"127.0.0.1:{p}" for p in ports]
        per_party = [[] for _ in range(3)]
        for w in weights:
            shares = self.io.make_shares(w, libspu.Visibility.VIS_SECRET)
            for r in range(3):
                per_party[r].append((shares[r].meta, list(shares[r].share_chunks)))
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        exe_bytes = executable.SerializeToString()
        for r in range(3):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_party_process,
                            args=(r, addrs, exe_bytes, per_party[r], profile, child), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)
        for c in self.conns:
            if not c.poll(180):
                raise RuntimeError("an SPU party process did not start within 180 s")
            assert c.recv() == "ready"

    def predict(self, x):
        shares = self.io.make_shares(x, libspu.Visibility.VIS_SECRET)
        for r, c in enumerate(self.conns):
            c.send((shares[r].meta, list(shares[r].share_chunks)))
        outs = []
        for c in self.conns:
            meta, chunks = c.recv()
            s = libspu.Share()
            s.meta, s.share_chunks = meta, chunks
            outs.append(s)
        return self.io.reconstruct(outs)

    def close(self):
        for c in self.conns:
            c.send(None)
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.kill()


LINK_RE = re.compile(r"Link details: total send bytes (\d+), recv bytes (\d+), "
                     r"send actions (\d+), recv actions (\d+)")


def link_stats(make_session, x, requests=2):
    """SPU's own link statistics for one request: bytes sent (summed over the three parties)
    and the largest number of messages one party sent ("send actions").

    SPU logs them (to stdout, through its C++ logger) at the end of every run of a runtime
    built with enable_pphlo_profile, one "Link details" line per party and run, for that run
    alone. `requests` profiled requests are made on a fresh session (the first serves as
    warm-up) and the last one's lines are read."""
    with tempfile.TemporaryFile(mode="w+") as tmp:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            session = make_session()
            try:
                for _ in range(requests):
                    session.predict(x)
            finally:
                session.close()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        tmp.seek(0)
        text = tmp.read()
    found = [tuple(map(int, m)) for m in LINK_RE.findall(text)]
    if len(found) != 3 * requests:
        log(f"could not read SPU's link statistics ({len(found)} 'Link details' lines, "
            f"want {3 * requests})")
        return None, None
    last = found[-3:]
    return sum(f[0] for f in last), max(f[2] for f in last)


# --- main ---------------------------------------------------------------------------


def measure(model_name, batch, runs, mode, stats):
    path = FIXTURES / model_name / "model.onnx"
    model = Model(path)
    x, want = fixture_rows(model_name, batch)
    # The JAX port must be the ONNX model: checked in plaintext first.
    plain = np.asarray(jax.jit(model.fn)(x, *model.weights))
    plain_err = float(np.abs(plain - want).max())
    if plain_err > 1e-3:
        raise SystemExit(f"{model_name}: the JAX port differs from onnxruntime by {plain_err:.2e}")
    t0 = time.perf_counter()
    exe = compile_model(model, x, model.weights)
    compile_s = time.perf_counter() - t0
    make = {"embedded": Embedded, "processes": Processes}[mode]
    t0 = time.perf_counter()
    session = make(exe, model.weights)
    session.predict(x)  # warm-up
    setup_s = time.perf_counter() - t0
    times = []
    max_abs_err = 0.0
    try:
        for _ in range(runs):
            t = time.perf_counter()
            got = session.predict(x)
            times.append(time.perf_counter() - t)
            max_abs_err = max(max_abs_err, float(np.abs(np.asarray(got) - want).max()))
    finally:
        session.close()
    bytes_, rounds = (None, None)
    if stats:
        bytes_, rounds = link_stats(lambda: make(exe, model.weights, profile=True), x)
    where = ("3 parties as threads of one process, in-memory links" if mode == "embedded"
             else "3 parties as processes, brpc links on 127.0.0.1")
    config = (f"SPU {spu.__version__}, ABY3, FM64, {FRACTION_BITS} fractional bits, {where}, "
              f"weights and input secret, 1 warm-up, {runs} runs")
    log(f"{model_name} batch {batch}: ops {model.ops}; plaintext JAX vs onnxruntime "
        f"{plain_err:.1e}; SPU compile {compile_s:.2f} s, setup + warm-up {setup_s:.2f} s")
    return {
        "model": model_name,
        "batch": batch,
        "online_median_ms": round(statistics.median(times) * 1e3, 3),
        "online_min_ms": round(min(times) * 1e3, 3),
        "bytes": bytes_,
        "rounds": rounds,
        "max_abs_err": float(f"{max_abs_err:.3g}"),
        "config": config,
    }


def human_bytes(n):
    if n is None:
        return "n/a"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def human_ms(ms):
    return f"{ms / 1e3:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="timed requests per row, after one warm-up")
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS),
                    help="fixture models, comma-separated [default: %(default)s]")
    ap.add_argument("--batch", default="",
                    help="batch sizes for every model, comma-separated [default: 1 and 64 for "
                         "mlp_a and lenet, 1 for cnn_bn]")
    ap.add_argument("--mode", choices=["embedded", "processes"], default="embedded")
    ap.add_argument("--no-stats", action="store_true",
                    help="skip the profiled request that reads SPU's link statistics")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    spu.check_cpu_feature()
    results = []
    started = time.perf_counter()
    for model in [r for r in args.rows.split(",") if r]:
        batches = [int(b) for b in args.batch.split(",") if b] or default_batches(model)
        for batch in batches:
            log(f"measuring {model} at batch {batch} ({args.mode})")
            r = measure(model, batch, args.runs, args.mode, not args.no_stats)
            print(json.dumps(r), file=_JSON_OUT, flush=True)
            results.append(r)
    load = os.getloadavg()
    print(f"\nSPU {spu.__version__} ({args.mode}), {args.runs} runs, "
          f"{time.perf_counter() - started:.0f} s in all; load average at the end "
          f"{load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}\n", file=sys.stderr)
    print("| model | batch | online min | online median | sent (3 parties) | send actions (rounds) "
          "| max abs err |", file=sys.stderr)
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in results:
        print(f"| {TITLES.get(r['model'], r['model'])} | {r['batch']} | {human_ms(r['online_min_ms'])} "
              f"| {human_ms(r['online_median_ms'])} | {human_bytes(r['bytes'])} "
              f"| {r['rounds'] if r['rounds'] is not None else 'n/a'} | {r['max_abs_err']:.1e} |",
              file=sys.stderr)


if __name__ == "__main__":
    main()

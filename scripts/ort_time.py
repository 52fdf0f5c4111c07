#!/usr/bin/env python3
"""onnxruntime's single-threaded latency on a model, for the benchmark's reference column:

    .venv/bin/python scripts/ort_time.py MODEL.onnx INPUT.npy [INPUT2.npy ...] [--runs N]

Inputs are given in the model's input order (integer files as their dtype, cast to what the
model declares). Prints one JSON object: {"median_ms", "min_ms", "runs", "onnxruntime"}.
One intra-op and one inter-op thread, sequential execution, default graph optimisations,
one warm-up run first.
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort

TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    feeds = {
        i.name: np.load(path).astype(TYPES.get(i.type, np.float32))
        for i, path in zip(session.get_inputs(), args.inputs)
    }
    session.run(None, feeds)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        session.run(None, feeds)
        times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    print(json.dumps({"median_ms": times[len(times) // 2], "min_ms": times[0],
                      "runs": args.runs, "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()

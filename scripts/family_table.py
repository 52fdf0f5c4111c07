#!/usr/bin/env python3
"""Per-fixture figures: convert each fixture once, then run it under embedded mpc at each batch
its manifest has expected outputs for, and print one markdown row per (fixture, batch).

    cargo build --release && .venv/bin/python scripts/family_table.py . [FIXTURE ...]

Columns: online latency, bytes sent and rounds as `tfe-predict --profile` reports them, the
process's peak RSS (/usr/bin/time), the largest |error| against the fixture's onnxruntime
outputs beside the output's scale, and exact labels / top-1 agreement. Default fixtures: the
transformer, Keras, tree, SVM and k-NN families."""
import json, os, re, subprocess, sys, tempfile, time
import numpy as np
repo = sys.argv[1]
names = sys.argv[2:] or ["vit_tiny", "bert_tiny", "bert_tiny_dynamo", "gpt2_tiny", "llama_tiny",
    "keras_mobilenet", "skl_forest", "skl_forest_binary", "skl_gbm", "skl_tree_regressor",
    "xgb_classifier", "xgb_binary", "skl_svc", "skl_linear_svc", "skl_linear_svc_binary", "skl_knn"]
man = json.load(open(f"{repo}/fixtures/manifest.json"))["fixtures"]
bin_ = f"{repo}/target/release"
tmp = tempfile.mkdtemp()
print("| model | batch | latency | sent | rounds | peak RSS | max abs err / output scale | labels / top-1 |")
print("|---|---|---|---|---|---|---|---|")
for name in names:
    m = man[name]; d = f"{repo}/fixtures/{name}"
    model = f"{d}/{m.get('model_file','model.onnx')}"
    plan = f"{tmp}/{name}.plan"
    subprocess.run([f"{bin_}/tfe-convert", model, "-o", plan], check=True, capture_output=True)
    inputs = m.get("inputs") or [m["input"]]
    batches = sorted({k for o in m["outputs"] for k in o.get("expected", {})}, key=lambda b: int(b[1:]))
    for b in batches:
        ins = [f"{d}/{i.get('saved_as', {}).get('files', {}).get(b) or 'input_'+b+'.npy'}" for i in inputs]
        outs = [f"{tmp}/{name}_{b}_{k}.npy" for k in range(len(m["outputs"]))]
        cmd = ["/usr/bin/time", "-f", "MAXRSS %M", f"{bin_}/tfe-predict", plan, *ins, "--profile"]
        for o in outs: cmd += ["-o", o]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(f"| {name} | {b} | FAILED: {r.stderr.strip().splitlines()[-1][:100]} |"); continue
        text = r.stdout + r.stderr
        rss = int(re.search(r"MAXRSS (\d+)", text).group(1)) / 1024
        mm = re.search(r"mpc: batch \d+, ([\d.]+ \w+), ([\d.]+ \w+) sent in (\d+) rounds", text)
        errs, exact = [], []
        for o, spec in zip(outs, m["outputs"]):
            g = np.load(o).astype(np.float64); e = np.load(f"{d}/{spec['expected'][b]}").astype(np.float64).reshape(g.shape)
            if e.dtype.kind in "iu" or spec["type"].startswith("tensor(int"):
                exact.append(f"{int((np.round(g)==e).sum())}/{e.size}")
            else:
                scale = max(np.abs(e).max(), 1e-9)
                errs.append(f"{np.abs(g-e).max():.2e} / {scale:.3g}")
                if g.ndim >= 2 and g.shape[-1] > 1:
                    a, b_ = g.argmax(-1), e.argmax(-1)
                    exact.append(f"top1 {int((a==b_).sum())}/{a.size}")
        print(f"| {name} | {b[1:]} | {mm.group(1)} | {mm.group(2)} | {mm.group(3)} | {rss:.0f} MiB | {'; '.join(errs)} | {'; '.join(exact)} |", flush=True)

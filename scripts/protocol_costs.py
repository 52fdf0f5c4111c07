#!/usr/bin/env python3
"""Per-fixture online cost of one request under ABY3 and under Pond, exact and untimed: bytes
and rounds from `tfe-convert --check --json --protocol aby3|pond` (the closed forms that the
tests hold equal to the metered traffic), at batch 1 and a larger batch, with Pond over ABY3.

    cargo build --release --bin tfe-convert && python3 scripts/protocol_costs.py . [FIXTURE ...]
"""
import json, subprocess, sys
repo = sys.argv[1]
names = sys.argv[2:] or ["mlp_a", "lenet", "cnn_bn", "mlp", "tf_cnn", "keras_mobilenet",
    "vit_tiny", "bert_tiny", "gpt2_tiny", "llama_tiny", "transformer_ts", "lstm_ts", "gru_ts",
    "skl_mlp", "skl_forest", "skl_svc", "skl_knn", "xgb_classifier"]
man = json.load(open(f"{repo}/fixtures/manifest.json"))["fixtures"]
BATCHES = (1, 64)

def mib(b):
    return f"{b / 2**20:.2f} MiB" if b >= 2**20 else f"{b / 1024:.1f} KiB"

def estimate(model, protocol, batch):
    out = subprocess.run([f"{repo}/target/release/tfe-convert", "--check", "--json",
        "--protocol", protocol, "--batch", str(batch), model], check=True, capture_output=True)
    e = json.loads(out.stdout)["estimate"]
    return e["bytes"], e["rounds"]

head = ["model"]
for b in BATCHES:
    head += [f"b{b} ABY3 bytes", f"b{b} Pond bytes", f"b{b} Pond / ABY3"]
head += ["ABY3 rounds", "Pond rounds"]
print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
for name in names:
    model = f"{repo}/fixtures/{name}/{man[name].get('model_file', 'model.onnx')}"
    cells, rounds = [name], None
    for b in BATCHES:
        (ab, ar), (pb, pr) = (estimate(model, p, b) for p in ("aby3", "pond"))
        cells += [mib(ab), mib(pb), f"{pb / ab:.2f}"]
        rounds = (ar, pr)
    print("| " + " | ".join(cells + [str(r) for r in rounds]) + " |")

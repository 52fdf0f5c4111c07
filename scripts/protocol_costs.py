#!/usr/bin/env python3
"""Per-fixture online cost of one request under ABY3 and under Pond, exact and untimed: bytes
and rounds from `tfe-convert --check --json --protocol aby3|pond` (the closed forms that the
tests hold equal to the metered traffic), at batch 1 and a larger batch, with Pond over ABY3;
then who sends what at batch 1: each party's bytes and the client's input shares.

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
    return json.loads(out.stdout)["estimate"]

def table(head, rows):
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")

models = {name: f"{repo}/fixtures/{name}/{man[name].get('model_file', 'model.onnx')}"
          for name in names}
found = {(name, p, b): estimate(model, p, b)
         for name, model in models.items() for p in ("aby3", "pond") for b in BATCHES}
head = ["model"]
for b in BATCHES:
    head += [f"b{b} ABY3 bytes", f"b{b} Pond bytes", f"b{b} Pond / ABY3"]
head += ["ABY3 rounds", "Pond rounds"]
rows = []
for name in names:
    cells = [name]
    for b in BATCHES:
        ab, pb = (found[name, p, b]["bytes"] for p in ("aby3", "pond"))
        cells += [mib(ab), mib(pb), f"{pb / ab:.2f}"]
    rows.append(cells + [str(found[name, p, BATCHES[-1]]["rounds"]) for p in ("aby3", "pond")])
table(head, rows)
print()
rows = []
for name in names:
    for p in ("aby3", "pond"):
        e = found[name, p, 1]
        rows.append([name, p] + [mib(b) for b in e["bytes_by_party"]]
                    + [mib(e["input_bytes"]), mib(e["bytes"])])
table(["model", "protocol", "party 0 / server 0", "party 1 / server 1", "party 2 / producer",
       "client (input)", "all"], rows)

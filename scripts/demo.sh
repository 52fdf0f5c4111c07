#!/usr/bin/env bash
# The main job on a shipped model: convert the digits CNN (exported by torch.onnx.export) to
# a plan, run it under three-party secret sharing on 32 test images, and compare with the
# plaintext outputs onnxruntime produced when the fixture was made.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins
out=target/demo
mkdir -p "$out"
set -x
target/release/tfe-convert fixtures/cnn/model.onnx --check
target/release/tfe-convert fixtures/cnn/model.onnx -o "$out/cnn.plan"
target/release/tfe-predict "$out/cnn.plan" fixtures/cnn/input_b1.npy
target/release/tfe-predict "$out/cnn.plan" fixtures/cnn/input_b32.npy -o "$out/logits.npy" --profile
target/release/tfe-predict "$out/cnn.plan" fixtures/cnn/input_b32.npy -o "$out/logits_float.npy" --mode float

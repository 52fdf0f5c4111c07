#!/usr/bin/env python3
"""Large models for the memory and latency measurements of issue 10, regenerated on demand
(seeded, random initialisation, nothing downloaded) instead of committed:

    .venv/bin/python scripts/make_large_models.py                 # both (~2 min on 2 cores)
    .venv/bin/python scripts/make_large_models.py bert_base       # or resnet50, bert_base_embeds,
                                                                  # efficientnet_b0, mobilenet_v2, vit_tiny_224
    .venv/bin/python scripts/make_large_models.py --out DIR ...   # default target/large-models

    bert_base  transformers BertForSequenceClassification from BertConfig() (BERT-base: 12
               layers, hidden 768, 12 heads, FFN 3072, vocab 30522; 2 labels), sequence
               length 128, inputs input_ids + attention_mask (int64), exported exactly like
               fixtures/bert_tiny (TorchScript exporter, default opset, dynamic batch). ~440 MB
    bert_base_embeds
               bert_base's weights taking inputs_embeds (float, [b,128,768]) with no mask and
               static shapes, one model per batch size (DIR/bert_base_embeds_b{1,4}/), for
               tfe-convert --fixed-shapes while int64 input_ids do not convert. ~330 MB each
    resnet50   torchvision resnet50(weights=None), 1000 classes, [N,3,224,224], TorchScript
               exporter, default opset, dynamic batch. Its BatchNorm statistics are
               recalibrated on random images (see below) so that the activations stay in a
               trained network's range. ~100 MB
    efficientnet_b0, mobilenet_v2
               torchvision efficientnet_b0 / mobilenet_v2 (weights=None), 1000 classes,
               exported and recalibrated like resnet50 (SiLU and squeeze-excite sigmoids in
               EfficientNet-B0, ReLU6 in MobileNetV2). ~21 MB / ~14 MB
    vit_tiny_224
               timm vit_tiny_patch16_224 (pretrained=False: embed 192, depth 12, 3 heads,
               1000 classes), timm's own initialisation, exported like resnet50. ~23 MB

Each DIR/<name>/ gets model.onnx, the inputs at batch 1 and 4 (input_b{1,4}.npy, or
input_b{1,4}_{input name}.npy for BERT) and onnxruntime's outputs (expected_b{1,4}.npy;
CPUExecutionProvider, ORT_DISABLE_ALL, 1 thread), plus info.json with the sha256 of every
file and the versions. Same venv and pins as the fixtures (scripts/python-env.sh). The
files are large (don't commit them; target/ is gitignored).
"""

from __future__ import annotations

import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.argv])
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
from fixture_lib import file_hashes, input_files, ort_session, run_onnx  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
BATCHES = (1, 4)
SEQ = 128


def export(model, args: tuple, names: list[str], out_name: str, path: Path) -> None:
    dyn = {n: {0: "batch"} for n in [*names, out_name]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), dynamo=False, input_names=names, output_names=[out_name],
                          dynamic_axes=dyn)


def write(d: Path, name: str, x: dict, reference, notes: list[str], batches: tuple = BATCHES) -> None:
    path = d / "model.onnx"
    sess = ort_session(path)
    names = list(x)
    errs = {}
    for b in batches:
        xb = {k: np.ascontiguousarray(v[:b]) for k, v in x.items()}
        for fname, arr in zip(input_files(names, b), xb.values()):
            np.save(d / fname, arr)
        t0 = time.time()
        (y,) = run_onnx(sess, xb if len(names) > 1 else xb[names[0]])
        t_ort = time.time() - t0
        np.save(d / f"expected_b{b}.npy", y.astype(np.float32))
        ref = reference(xb)
        errs[f"b{b}"] = float(np.abs(y - ref).max())
        print(f"   b{b}: onnxruntime {t_ort:.1f}s (1 thread), max|ort - torch| {errs[f'b{b}']:.2e}, "
              f"max|output| {float(np.abs(y).max()):.3g}")
    m = onnx.load(str(path), load_external_data=False)
    import transformers
    import torchvision

    info = {
        "name": name,
        "generator": "scripts/make_large_models.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "torchvision": torchvision.__version__, "onnx": onnx.__version__,
                     "onnxruntime": ort.__version__, "numpy": np.__version__},
        "opset_import": [[o.domain, int(o.version)] for o in m.opset_import],
        "inputs": [i.name for i in m.graph.input],
        "outputs": [o.name for o in m.graph.output],
        "nodes": len(m.graph.node),
        "parameters": int(sum(int(np.prod(t.dims)) for t in m.graph.initializer)),
        "batches": list(batches),
        "max_abs_onnxruntime_minus_torch": errs,
        "notes": notes,
    }
    info["files"] = {k: v for k, v in file_hashes(d).items() if k != "info.json"}
    (d / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    size = sum(p.stat().st_size for p in d.iterdir())
    print(f"   wrote {d} ({size / 2**20:.0f} MiB, {info['nodes']} nodes, {info['parameters']} parameters)")


def bert_base(out: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    d = out / "bert_base"
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(41)
    model = BertForSequenceClassification(BertConfig(num_labels=2)).eval()
    rng = np.random.default_rng(141)
    b = max(BATCHES)
    ids = rng.integers(1000, 30522, size=(b, SEQ), dtype=np.int64)
    ids[:, 0] = 101  # [CLS]
    mask = np.zeros((b, SEQ), dtype=np.int64)
    for r, n in enumerate((128, 100, 64, 17)[:b]):
        mask[r, :n] = 1
        ids[r, n - 1] = 102  # [SEP]
    ids[mask == 0] = 0  # [PAD]
    x = {"input_ids": ids, "attention_mask": mask}
    t0 = time.time()
    export(model, tuple(torch.from_numpy(v[:2]) for v in x.values()), list(x), "logits", d / "model.onnx")
    print(f"== bert_base: exported in {time.time() - t0:.0f}s")

    @torch.no_grad()
    def ref(xb):
        return model(**{k: torch.from_numpy(v) for k, v in xb.items()}).logits.numpy()

    write(d, "bert_base", x, ref, [
        "BertForSequenceClassification(BertConfig(num_labels=2)): BERT-base, random initialisation "
        "(torch.manual_seed(41), initializer_range 0.02), eval mode",
        "inputs: [CLS] + ids uniform in [1000, 30522) + [SEP], right-padded with [PAD]=0 (numpy default_rng(141)); "
        "attention_mask rows with 128, 100, 64 and 17 ones; batch 1 = row 0",
        "exported like fixtures/bert_tiny: torch.onnx.export(model, (input_ids, attention_mask), dynamo=False, "
        "input_names=['input_ids', 'attention_mask'], output_names=['logits'], dynamic_axes={batch on all three})",
    ])


def bert_base_embeds(out: Path) -> None:
    """bert_base's weights as a float model with fixed shapes, one per batch size, for the memory
    figures while its int64 input_ids do not convert (see docs/PERFORMANCE.md)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(41)
    # The same initialisation as bert_base; eager attention: no mask, so no IsNaN or And.
    model = BertForSequenceClassification(BertConfig(num_labels=2, attn_implementation="eager")).eval()

    class Embeds(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inputs_embeds):
            return self.m(inputs_embeds=inputs_embeds).logits

    wrapped = Embeds(model).eval()
    rng = np.random.default_rng(141)
    ids = rng.integers(1000, 30522, size=(max(BATCHES), SEQ), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP], no padding
    with torch.no_grad():
        x = {"inputs_embeds": model.bert.embeddings.word_embeddings(torch.from_numpy(ids)).numpy()}

    @torch.no_grad()
    def ref(xb):
        return wrapped(torch.from_numpy(xb["inputs_embeds"])).numpy()

    for b in BATCHES:
        d = out / f"bert_base_embeds_b{b}"
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (torch.from_numpy(x["inputs_embeds"][:b]),), str(d / "model.onnx"),
                              dynamo=False, input_names=["inputs_embeds"], output_names=["logits"])
        print(f"== bert_base_embeds_b{b}: exported in {time.time() - t0:.0f}s")
        write(d, f"bert_base_embeds_b{b}", x, ref, [
            "bert_base's BertForSequenceClassification (torch.manual_seed(41)) with attn_implementation='eager', "
            "wrapped to take inputs_embeds [b,128,768] float32 (no attention mask, no word-embedding table)",
            "inputs: the word embeddings of [CLS] + ids uniform in [1000, 30522) + [SEP] (numpy default_rng(141))",
            f"static shapes (batch {b}): convert with tfe-convert --fixed-shapes",
        ], batches=(b,))


def recalibrated(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random initialisation leaves running_mean 0 / running_var 1 in every BatchNorm, so in
    eval mode nothing is normalised and activations grow through the blocks. Recalibrate:
    cumulative averages of the batch statistics over 4 batches of 8 standard-normal images."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, 3, 224, 224, generator=g))
    return model.eval()


def image_model(out: Path, name: str, model: torch.nn.Module, input_seed: int, notes: list[str]) -> None:
    """An image classifier on [N,3,224,224] standard-normal inputs, exported like resnet50."""
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    x = {"input": np.random.default_rng(input_seed).standard_normal((max(BATCHES), 3, 224, 224)).astype(np.float32)}
    t0 = time.time()
    export(model, (torch.from_numpy(x["input"][:1]),), ["input"], "output", d / "model.onnx")
    print(f"== {name}: exported in {time.time() - t0:.0f}s")

    @torch.no_grad()
    def ref(xb):
        return model(torch.from_numpy(xb["input"])).numpy()

    write(d, name, x, ref, notes + [
        f"inputs: standard normal [N,3,224,224] (numpy default_rng({input_seed})); batch 1 = row 0",
        "torch.onnx.export(model, (x,), dynamo=False, input_names=['input'], output_names=['output'], "
        "dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})",
    ])


def torchvision_model(out: Path, name: str, seed: int) -> None:
    import torchvision

    torch.manual_seed(seed)
    model = recalibrated(getattr(torchvision.models, name)(weights=None), 100 + seed)
    image_model(out, name, model, 101 + seed, [
        f"torchvision.models.{name}(weights=None), random initialisation (torch.manual_seed({seed})); BatchNorm "
        "running statistics recalibrated in train mode (momentum=None: cumulative average) on 4 batches of 8 "
        f"standard-normal images (torch.Generator seed {100 + seed}), then eval mode",
    ])


def resnet50(out: Path) -> None:
    torchvision_model(out, "resnet50", 42)


def efficientnet_b0(out: Path) -> None:
    torchvision_model(out, "efficientnet_b0", 43)


def mobilenet_v2(out: Path) -> None:
    torchvision_model(out, "mobilenet_v2", 44)


def vit_tiny_224(out: Path) -> None:
    import timm

    torch.manual_seed(45)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    image_model(out, "vit_tiny_224", model, 145, [
        f"timm {timm.__version__} create_model('vit_tiny_patch16_224', pretrained=False): embed 192, depth 12, "
        "3 heads, MLP ratio 4, 1000 classes; timm's own random initialisation after torch.manual_seed(45); eval mode",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="any of the makers below (default: bert_base and resnet50)")
    p.add_argument("--out", type=Path, default=ROOT / "target" / "large-models")
    a = p.parse_args()
    makers = {"bert_base": bert_base, "bert_base_embeds": bert_base_embeds, "resnet50": resnet50,
              "efficientnet_b0": efficientnet_b0, "mobilenet_v2": mobilenet_v2, "vit_tiny_224": vit_tiny_224}
    bad = set(a.names) - set(makers)
    if bad:
        p.error(f"unknown model(s) {sorted(bad)}: choose from {sorted(makers)}")
    t0 = time.time()
    for name in a.names or ["bert_base", "resnet50"]:
        makers[name](a.out)
    print(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()

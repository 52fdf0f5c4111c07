"""Write every ONNX backend node test case to a directory the Rust conformance test reads.

    python scripts/extract_node_tests.py [OUT_DIR]      # default: target/conformance

The cases are those of `onnx.backend.test.loader.load_model_tests(kind="node")`, which the
onnx package generates in memory (its wheel ships no node test data files); each has one data
set. For each case in scope by construction, `OUT_DIR/<case>/` gets:
  model.onnx      the model, with every non-float input (integer or bool: shapes, axes,
                  indices, conditions) turned into an initializer holding this case's value
                  and removed from the graph inputs; but when every input of the case is
                  integer or bool (the comparison and logic ops' own tests), they stay
                  inputs, fed as float32 so that they are secret: booleans as 0/1 through a
                  Cast to bool, integers as their values where the ops read them as floats
                  (else they stay constants);
  input_<i>.npy   the remaining (float) inputs, in graph order;
  output_<i>.npy  the expected outputs, booleans as float32 0/1.
`OUT_DIR/manifest.json` lists, per case: name, opset, op types, the dtypes of the inputs
(with the names of those made constant) and outputs, and `skip`, the reason the case is out
of scope by construction (null when it is not). Floats other than float32 are never
converted: such a case is skipped. The directory is rebuilt from scratch on every run.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

# Element types made into constants: the integer and boolean inputs.
CONSTANT_TYPES = {
    TensorProto.BOOL,
    TensorProto.INT8,
    TensorProto.INT16,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
    TensorProto.UINT16,
    TensorProto.UINT32,
    TensorProto.UINT64,
}


def is_float(elem: int | None) -> bool:
    """float32, float16, float64, bfloat16, and the 8- and 4-bit float formats."""
    if elem is None:
        return False
    name = TensorProto.DataType.Name(elem)
    return name == "DOUBLE" or "FLOAT" in name


def dtype_name(value_info: onnx.ValueInfoProto) -> str:
    """The element type of a tensor-typed value, or the kind of a non-tensor one."""
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type":
        return kind or "unknown"
    return TensorProto.DataType.Name(value_info.type.tensor_type.elem_type).lower()


def elem_type(value_info: onnx.ValueInfoProto) -> int | None:
    if value_info.type.WhichOneof("value") != "tensor_type":
        return None
    return value_info.type.tensor_type.elem_type


def all_nodes(graph: onnx.GraphProto):
    """Every node, including those of subgraphs (If, Loop, Scan bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                yield from all_nodes(sub)


def op_types(model: onnx.ModelProto) -> list[str]:
    """Op types, qualified with their domain outside the default one (`domain:Op`)."""
    names = set()
    for node in all_nodes(model.graph):
        default = node.domain in ("", "ai.onnx")
        names.add(node.op_type if default else f"{node.domain}:{node.op_type}")
    return sorted(names)


def default_opset(model: onnx.ModelProto) -> int | None:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def in_training_mode(model: onnx.ModelProto, constants: dict[str, np.ndarray]) -> bool:
    """BatchNormalization with training_mode=1, or Dropout whose training_mode input is true."""
    for node in all_nodes(model.graph):
        if node.op_type == "BatchNormalization":
            if any(a.name == "training_mode" and a.i == 1 for a in node.attribute):
                return True
        if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
            value = constants.get(node.input[2])
            if value is None or bool(np.asarray(value).any()):
                return True
    return False


def skip_reason(case, constants: dict[str, np.ndarray]) -> str | None:
    """Why the case is out of scope by construction, or None."""
    model = case.model
    graph = model.graph
    if len(model.functions):
        return "model-local functions"
    for vi in list(graph.input) + list(graph.output):
        if elem_type(vi) is None:
            return f"sequence or optional type ({vi.name}: {dtype_name(vi)})"
    for vi in graph.output:
        if elem_type(vi) == TensorProto.BOOL:
            continue
        if not is_float(elem_type(vi)):
            return f"non-float output ({vi.name}: {dtype_name(vi)})"
        if elem_type(vi) != TensorProto.FLOAT:
            return f"float output is not float32 ({vi.name}: {dtype_name(vi)})"
    for vi in graph.input:
        t = elem_type(vi)
        if is_float(t) and t != TensorProto.FLOAT:
            return f"float input is not float32 ({vi.name}: {dtype_name(vi)})"
        if not is_float(t) and t not in CONSTANT_TYPES:
            return f"input neither float nor a byte-sized integer or bool ({vi.name}: {dtype_name(vi)})"
    if in_training_mode(model, constants):
        return "training mode"
    return None


def as_array(value):
    """A data-set value as an ndarray, or None for sequences, optionals and the like."""
    if isinstance(value, TensorProto):
        return None
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value)
    return None


def constant_inputs(case) -> dict[str, np.ndarray]:
    """The case's values for its integer and boolean graph inputs."""
    inputs, _ = case.data_sets[0]
    out = {}
    for vi, value in zip(case.model.graph.input, inputs):
        array = as_array(value)
        if elem_type(vi) in CONSTANT_TYPES and array is not None:
            out[vi.name] = array
    return out


def rewrite(model: onnx.ModelProto, constants: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The model with the given inputs moved to initializers."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    kept = [vi for vi in model.graph.input if vi.name not in constants]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    for name, value in constants.items():
        model.graph.initializer.append(numpy_helper.from_array(value, name))
    return model


def as_float_inputs(model: onnx.ModelProto, constants: dict[str, np.ndarray], integers: bool):
    """The model with its boolean inputs, and with `integers` its integer ones too, declared
    float32 (booleans cast back to bool by a node in front), and the inputs left constant;
    None when that changes a value or breaks the model."""
    retyped = {
        name for name, v in constants.items()
        if v.dtype == bool or (integers and np.asarray(v, dtype=np.float32).astype(v.dtype).tolist() == v.tolist())
    }
    model = rewrite(model, {k: v for k, v in constants.items() if k not in retyped})
    if not opset_with_integer_casts(model):
        return None
    casts = []
    for vi in model.graph.input:
        if vi.type.tensor_type.elem_type == TensorProto.BOOL:
            as_bool = f"{vi.name}__bool"
            for node in all_nodes(model.graph):
                for k, name in enumerate(node.input):
                    if name == vi.name:
                        node.input[k] = as_bool
            casts.append(onnx.helper.make_node("Cast", [vi.name], [as_bool], to=TensorProto.BOOL))
        vi.type.tensor_type.elem_type = TensorProto.FLOAT
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception:
        return None
    return model, {k: v for k, v in constants.items() if k not in retyped}


def opset_with_integer_casts(model: onnx.ModelProto) -> bool:
    """Raises the default opset of `model` to 6 (where Cast takes an integer `to`) when it is
    older and every op of the model means the same at 6; False when it cannot."""
    CAST_INTEGER_TO = 6
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < CAST_INTEGER_TO:
            same = all(
                onnx.defs.get_schema(n.op_type, CAST_INTEGER_TO).since_version
                == onnx.defs.get_schema(n.op_type, opset.version).since_version
                for n in all_nodes(model.graph)
            )
            if not same:
                return False
            opset.version = CAST_INTEGER_TO
    return True


def write_case(case, directory: Path, constants: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Writes the case, and returns the inputs made initializers: `constants`, or none when
    they are all the case's inputs (see the module doc)."""
    directory.mkdir(parents=True)
    model = rewrite(case.model, constants)
    inputs, outputs = case.data_sets[0]
    if list(case.model.graph.input) and len(constants) == len(case.model.graph.input):
        retyped = as_float_inputs(case.model, constants, True) or as_float_inputs(
            case.model, constants, False
        )
        if retyped is not None:
            model, constants = retyped
            inputs = [np.asarray(v, dtype=np.float32) for v in inputs]
    onnx.save(model, directory / "model.onnx")
    float_inputs = [
        value for vi, value in zip(case.model.graph.input, inputs) if vi.name not in constants
    ]
    outputs = [as_array(v).astype(np.float32) if as_array(v).dtype == bool else v for v in outputs]
    for prefix, values in (("input", float_inputs), ("output", outputs)):
        for i, value in enumerate(values):
            np.save(directory / f"{prefix}_{i}.npy", as_array(value))
    return constants


def manifest_entry(case, constants: dict[str, np.ndarray], skip: str | None) -> dict:
    graph = case.model.graph
    return {
        "name": case.name,
        "opset": default_opset(case.model),
        "op_types": op_types(case.model),
        "input_dtypes": [dtype_name(vi) for vi in graph.input],
        "constant_inputs": sorted(constants),
        "output_dtypes": [dtype_name(vi) for vi in graph.output],
        "skip": skip,
    }


def load_cases():
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        # Generating the cases overflows float casts on purpose (Cast tests).
        warnings.simplefilter("ignore", RuntimeWarning)
        return sorted(load_model_tests(kind="node"), key=lambda c: c.name)


def main() -> None:
    out_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "target/conformance")
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    entries = []
    for case in load_cases():
        if len(case.data_sets) != 1:
            raise SystemExit(f"{case.name}: expected one data set, got {len(case.data_sets)}")
        constants = constant_inputs(case)
        skip = skip_reason(case, constants)
        if skip is None:
            constants = write_case(case, out_dir / case.name, constants)
        entries.append(manifest_entry(case, constants, skip))
    manifest = {"onnx": onnx.__version__, "numpy": np.__version__, "cases": entries}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print_summary(entries, out_dir)


def print_summary(entries: list[dict], out_dir: Path) -> None:
    reasons = Counter(e["skip"].split(" (")[0] for e in entries if e["skip"])
    written = sum(1 for e in entries if not e["skip"])
    print(f"[conformance] onnx {onnx.__version__}: {len(entries)} node test cases")
    print(f"[conformance]   {written} written to {out_dir}/")
    for reason, count in reasons.most_common():
        print(f"[conformance]   {count} skipped: {reason}")


if __name__ == "__main__":
    main()

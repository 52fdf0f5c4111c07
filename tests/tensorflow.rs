//! TensorFlow frozen graphs: a GraphDef built here (NHWC, the ops Keras models freeze to) is
//! converted through the ONNX translation and run in every mode against tract-tensorflow.

mod common;

use common::{max_abs_diff, random, temp_dir};
use ndarray::ArrayD;
use tfe::lower::{Options, convert};
use tfe::mpc::Protocol;
use tfe::serve::{Mode, predict};
use tract_tensorflow::prelude::*;
use tract_tensorflow::tfpb::{
    self,
    tensorflow::{
        DataType, GraphDef, NodeDef, TensorProto, TensorShapeProto, tensor_shape_proto::Dim,
    },
};

fn constant(name: &str, value: ArrayD<f32>) -> NodeDef {
    let tensor = Tensor::from(value);
    tfpb::node()
        .name(name)
        .op("Const")
        .attr("dtype", DataType::DtFloat)
        .attr("value", TensorProto::try_from(&tensor).unwrap())
}

fn int_constant(name: &str, values: &[i32]) -> NodeDef {
    let tensor = Tensor::from(ndarray::arr1(values).into_dyn());
    tfpb::node()
        .name(name)
        .op("Const")
        .attr("dtype", DataType::DtInt32)
        .attr("value", TensorProto::try_from(&tensor).unwrap())
}

fn op(name: &str, kind: &str, inputs: &[&str]) -> NodeDef {
    inputs.iter().fold(
        tfpb::node()
            .name(name)
            .op(kind)
            .attr("T", DataType::DtFloat),
        |n, i| n.input(*i),
    )
}

fn cnn() -> GraphDef {
    let shape = TensorShapeProto {
        dim: [-1i64, 8, 8, 2]
            .iter()
            .map(|&size| Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    };
    let window = |k: i64, s: i64| (vec![1, k, k, 1], vec![1, s, s, 1]);
    let (pool_k, pool_s) = window(2, 2);
    let (avg_k, avg_s) = window(3, 2);
    let var = random(&[4], 9, 1.0).mapv(|v| 0.5 + v.abs());
    tfpb::graph()
        .node(
            tfpb::node()
                .name("x")
                .op("Placeholder")
                .attr("dtype", DataType::DtFloat)
                .attr("shape", shape),
        )
        .node(constant("w1", random(&[3, 3, 2, 4], 1, 1.0)))
        .node(
            op("conv", "Conv2D", &["x", "w1"])
                .attr("strides", vec![1i64, 1, 1, 1])
                .attr("padding", "SAME")
                .attr("data_format", "NHWC"),
        )
        .node(constant("b1", random(&[4], 2, 0.5)))
        .node(op("bias", "BiasAdd", &["conv", "b1"]))
        .node(constant("gamma", random(&[4], 3, 1.0)))
        .node(constant("beta", random(&[4], 4, 0.5)))
        .node(constant("mean", random(&[4], 5, 0.5)))
        .node(constant("var", var))
        .node(
            op(
                "bn",
                "FusedBatchNorm",
                &["bias", "gamma", "beta", "mean", "var"],
            )
            .attr("epsilon", 1e-3f32)
            .attr("is_training", false),
        )
        .node(op("relu", "Relu", &["bn"]))
        .node(
            op("pool", "MaxPool", &["relu"])
                .attr("ksize", pool_k)
                .attr("strides", pool_s)
                .attr("padding", "VALID"),
        )
        .node(
            op("avg", "AvgPool", &["pool"])
                .attr("ksize", avg_k)
                .attr("strides", avg_s)
                .attr("padding", "SAME"),
        )
        .node(int_constant("flat_shape", &[-1, 16]))
        .node(op("flat", "Reshape", &["avg", "flat_shape"]).attr("Tshape", DataType::DtInt32))
        .node(constant("w2", random(&[16, 3], 6, 1.0)))
        .node(
            op("dense", "MatMul", &["flat", "w2"])
                .attr("transpose_a", false)
                .attr("transpose_b", false),
        )
        .node(constant("b2", random(&[3], 7, 0.5)))
        .node(op("logits", "BiasAdd", &["dense", "b2"]))
        .node(op("probabilities", "Softmax", &["logits"]))
}

#[test]
fn frozen_cnn_matches_tensorflow_semantics() {
    let path = temp_dir("tf-cnn").join("model.pb");
    cnn().save_to(&path).unwrap();
    let plan = convert(&path, Options::default())
        .unwrap_or_else(|e| panic!("{e:#}"))
        .plan;
    for batch in [1, 3] {
        let x = random(&[batch, 8, 8, 2], 11 + batch as u64, 1.0);
        let mut reference = tract_tensorflow::tensorflow()
            .model_for_path(&path)
            .unwrap();
        reference
            .set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), x.shape()))
            .unwrap();
        let expected = reference
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap()
            .run(tvec![Tensor::from(x.clone()).into()])
            .unwrap()[0]
            .to_plain_array_view::<f32>()
            .unwrap()
            .to_owned();
        for (mode, tolerance) in [
            (Mode::Float, 1e-4),
            (Mode::Fixed, 2e-3),
            (Mode::Mpc(Protocol::Aby3), 2e-3),
            (Mode::Mpc(Protocol::Pond), 2e-3),
        ] {
            let got = predict(&plan, std::slice::from_ref(&x), mode)
                .unwrap()
                .outputs
                .remove(0);
            let err = max_abs_diff(&got, &expected);
            assert!(
                err <= tolerance,
                "batch {batch} {mode:?}: max |error| {err} > {tolerance}"
            );
        }
    }
}

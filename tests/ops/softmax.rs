//! Softmax and LogSoftmax over any axis (src/lower/softmax.rs).

use crate::common::cases::*;

#[test]
fn softmax_and_log_softmax() {
    let soft = |op: &str, opset: i64, axis: Option<i64>| {
        let attrs = axis.map(|a| vec![int("axis", a)]).unwrap_or_default();
        case(&format!("{op}-{opset}-{axis:?}"), opset)
            .input("x", &[N, Some(3), Some(6)])
            .input_scale(4.0)
            .node(op, &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        soft("Softmax", 13, None),
        soft("Softmax", 13, Some(1)),
        soft("Softmax", 11, None),
        soft("Softmax", 11, Some(2)),
        soft("LogSoftmax", 13, None),
        soft("LogSoftmax", 13, Some(-2)),
        soft("LogSoftmax", 11, Some(1)),
    ]);
}

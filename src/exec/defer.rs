//! Which products may leave their truncation's second round pending: those whose result
//! reaches a ReLU through linear steps alone, each value on the way read by that one step.
//! The ReLU's comparison then takes the truncation's first-round terms and runs its first
//! round beside the truncation's second (one round less); a value read anywhere else would
//! have to settle on its own, which gains nothing.

use crate::plan::{Op, Plan};

/// Steps that run as linear maps on every share alike, so a pending value stays pending.
fn keeps_pending(op: &Op) -> bool {
    matches!(
        op,
        Op::Add | Op::Sub | Op::Neg | Op::Reshape { .. } | Op::Transpose { .. }
    )
}

/// Per step: whether its product may stay pending.
pub(super) fn deferrable(plan: &Plan) -> Vec<bool> {
    let mut readers: Vec<Vec<usize>> = vec![vec![]; plan.values.len()];
    for (i, step) in plan.steps.iter().enumerate() {
        for input in &step.inputs {
            readers[input.index()].push(i);
        }
    }
    for out in &plan.outputs {
        // An output is revealed: never its only reader's.
        readers[out.index()].push(usize::MAX);
    }
    let ends_in_relu = |mut step: usize| loop {
        match readers[plan.steps[step].output.index()].as_slice() {
            [next] if *next != usize::MAX => match plan.steps[*next].op {
                Op::Relu => return true,
                ref op if keeps_pending(op) => step = *next,
                _ => return false,
            },
            _ => return false,
        }
    };
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            matches!(
                step.op,
                Op::MatMul | Op::Conv { .. } | Op::Mul | Op::ConvTranspose { .. }
            ) && ends_in_relu(i)
        })
        .collect()
}

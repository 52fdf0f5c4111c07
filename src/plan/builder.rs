//! Building a plan value by value: used by the ONNX lowering and by library users who write
//! a custom secure computation directly.

use super::{
    Dim, Encoding, Input, Op, Plan, Shape, Source, Step, ValueId, ValueInfo, Visibility, Weight,
};
use crate::tensor::FixedPoint;
use anyhow::Result;
use ndarray::ArrayD;

pub struct PlanBuilder {
    plan: Plan,
}

impl PlanBuilder {
    pub fn new(fixed_point: FixedPoint, source: Source) -> Self {
        PlanBuilder {
            plan: Plan {
                fixed_point,
                source,
                values: vec![],
                inputs: vec![],
                outputs: vec![],
                weights: vec![],
                steps: vec![],
            },
        }
    }

    /// Continues `plan`: new values, steps and weights come after its own (a training step
    /// derived from a forward plan).
    pub fn extend(plan: Plan) -> Self {
        PlanBuilder { plan }
    }

    fn value(&mut self, name: &str, shape: Shape) -> ValueId {
        self.plan.values.push(ValueInfo {
            name: name.to_string(),
            shape,
        });
        ValueId(self.plan.values.len() as u32 - 1)
    }

    /// A client input of real numbers.
    pub fn input(&mut self, name: &str, shape: Shape) -> ValueId {
        self.encoded_input(name, shape, Encoding::Real)
    }

    /// A client input of integer ids below `depth`, given with `shape`: its value is their
    /// one-hot rows, of shape `shape` + `[depth]` (see [`Encoding::OneHot`]).
    pub fn one_hot_input(&mut self, name: &str, mut shape: Shape, depth: usize) -> ValueId {
        shape.0.push(Dim::Fixed(depth));
        self.encoded_input(name, shape, Encoding::OneHot { depth })
    }

    fn encoded_input(&mut self, name: &str, shape: Shape, encoding: Encoding) -> ValueId {
        let value = self.value(name, shape);
        self.plan.inputs.push(Input { value, encoding });
        value
    }

    pub fn weight(&mut self, name: &str, data: ArrayD<f32>, visibility: Visibility) -> ValueId {
        let id = self.value(name, Shape::fixed_dims(data.shape()));
        self.plan.weights.push(Weight {
            value: id,
            visibility,
            data,
        });
        id
    }

    /// Adds a step computing a new value named `name` with the given shape.
    pub fn step(
        &mut self,
        node: &str,
        op: Op,
        inputs: &[ValueId],
        name: &str,
        shape: Shape,
    ) -> ValueId {
        let output = self.value(name, shape);
        self.plan.steps.push(Step {
            node: node.to_string(),
            op,
            inputs: inputs.to_vec(),
            output,
        });
        output
    }

    /// The number of weights so far (the next weight's position).
    pub fn weight_count(&self) -> usize {
        self.plan.weights.len()
    }

    pub fn output(&mut self, id: ValueId) {
        self.plan.outputs.push(id);
    }

    /// The steps added so far.
    pub fn steps(&self) -> &[super::Step] {
        &self.plan.steps
    }

    pub fn shape(&self, id: ValueId) -> &Shape {
        &self.plan.values[id.index()].shape
    }

    pub fn build(self) -> Result<Plan> {
        self.plan.validate()?;
        Ok(self.plan)
    }
}

//! The sliding-window attributes of convolutions and poolings, checked against each other
//! before tract sees the model: tract's shape rules index them by spatial axis and panic on
//! lists of unequal lengths, and a malformed file deserves an error naming its node.

use super::Node;
use anyhow::{Result, bail};

/// Ops whose `kernel_shape`, `strides`, `dilations` and `pads` describe one window.
const WINDOWED: [&str; 7] = [
    "Conv",
    "ConvInteger",
    "QLinearConv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "LpPool",
];

/// Every windowed node's attributes agree on the number of spatial axes (pads hold two per
/// axis), strides, dilations and kernel sizes are positive and pads are not negative.
pub fn check(nodes: &[Node]) -> Result<()> {
    for node in nodes
        .iter()
        .filter(|n| n.domain.is_empty() && WINDOWED.contains(&n.op_type.as_str()))
    {
        check_node(node)?;
    }
    Ok(())
}

fn check_node(node: &Node) -> Result<()> {
    let malformed = |what: String| {
        anyhow::anyhow!(
            "node {} ({}): {what}; the model file is malformed, export it again",
            node.name,
            node.op_type
        )
    };
    let mut axes: Option<(&str, usize)> = None;
    for (name, per_axis, least) in [
        ("kernel_shape", 1, 1),
        ("strides", 1, 1),
        ("dilations", 1, 1),
        ("pads", 2, 0),
    ] {
        let Some(values) = node.ints(name)? else {
            continue;
        };
        if let Some(v) = values.iter().find(|&&v| v < least) {
            bail!(malformed(format!("{name} holds {v}, below {least}")));
        }
        if values.len() % per_axis != 0 {
            bail!(malformed(format!(
                "pads holds {} values, not two per spatial axis",
                values.len()
            )));
        }
        let count = values.len() / per_axis;
        match axes {
            Some((first, n)) if n != count => bail!(malformed(format!(
                "{first} covers {n} spatial axes but {name} covers {count}"
            ))),
            _ => axes = Some((name, count)),
        }
    }
    Ok(())
}

//! MaxPool, AveragePool, GlobalMaxPool and GlobalAveragePool (src/lower/pool.rs) over 1-d
//! and 2-d windows: pads, strides, dilations, ceil_mode, auto_pad, count_include_pad.

use crate::common::Attr;
use crate::common::cases::*;

fn pool(op: &str, name: &str, opset: i64, dims: &[Option<i64>], attrs: Vec<Attr>) -> Case {
    case(name, opset)
        .input("x", dims)
        .node(op, &["x"], &["y"], attrs)
        .output("y")
}

const IMAGE: &[Option<i64>] = &[N, Some(3), Some(7), Some(7)];
const SIGNAL: &[Option<i64>] = &[N, Some(3), Some(9)];

#[test]
fn max_pool() {
    let mp =
        |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| pool("MaxPool", name, 13, dims, attrs);
    run_all(vec![
        mp("maxpool-k2", IMAGE, vec![ints("kernel_shape", &[2, 2])]),
        mp("maxpool-k3", IMAGE, vec![ints("kernel_shape", &[3, 3])]),
        mp(
            "maxpool-k2-s2",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        mp(
            "maxpool-k3-s2",
            IMAGE,
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        mp(
            "maxpool-rect",
            IMAGE,
            vec![ints("kernel_shape", &[3, 2]), ints("strides", &[1, 2])],
        ),
        // padding must never win the max: the inputs are negative half of the time
        mp(
            "maxpool-pads",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
        ),
        mp(
            "maxpool-asym-pads",
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[0, 1, 2, 0]),
            ],
        ),
        // 7 with kernel 2 stride 2: floor gives 3, ceil gives 4
        mp(
            "maxpool-ceil",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        // 6 + 2 pads, kernel 3 stride 2: floor gives 3, ceil gives 4
        case("maxpool-ceil-pads", 13)
            .input("x", &[N, Some(2), Some(6), Some(6)])
            .node(
                "MaxPool",
                &["x"],
                &["y"],
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("strides", &[2, 2]),
                    ints("pads", &[1, 1, 1, 1]),
                    int("ceil_mode", 1),
                ],
            )
            .output("y"),
        mp(
            "maxpool-dilation",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 2])],
        ),
        mp(
            "maxpool-dilation-stride",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[2, 1]),
                ints("strides", &[2, 2]),
            ],
        ),
        mp(
            "maxpool-same-upper",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        ),
        mp(
            "maxpool-same-lower",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_LOWER")],
        ),
        mp("maxpool1d", SIGNAL, vec![ints("kernel_shape", &[3])]),
        // 9 + 1 pad, kernel 3 stride 2: floor gives 4, ceil gives 5
        mp(
            "maxpool1d-ceil-pads",
            SIGNAL,
            vec![
                ints("kernel_shape", &[3]),
                ints("strides", &[2]),
                ints("pads", &[1, 0]),
                int("ceil_mode", 1),
            ],
        ),
        mp(
            "maxpool3d",
            &[N, Some(2), Some(4), Some(5), Some(4)],
            vec![
                ints("kernel_shape", &[2, 2, 2]),
                ints("strides", &[2, 1, 2]),
                int("ceil_mode", 1),
            ],
        ),
        // opset 18 (MaxPool unchanged since 12)
        pool(
            "MaxPool",
            "maxpool-opset18",
            18,
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 0, 0]),
            ],
        ),
    ]);
}

/// A 3x3 window at stride 2 pools one axis at a time: on 9x9, the columns (9 rows of 4
/// outputs, two comparison levels) then the rows (4x4, two levels), 6 comparisons per
/// output where the whole window would take 8, in the same 16 rounds.
#[test]
fn overlapping_max_pool_goes_one_axis_at_a_time() {
    use tfe::mpc::cost::Cost;
    let c = pool(
        "MaxPool",
        "maxpool-by-axis",
        13,
        &[N, Some(1), Some(9), Some(9)],
        vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
    );
    let plan = tfe::lower::convert(&c.onnx.save(&c.name), c.options())
        .unwrap()
        .plan;
    let estimate = tfe::exec::estimate(&plan, 1, tfe::mpc::Protocol::Aby3).unwrap();
    let width = plan.fixed_point.comparison_bits();
    // The comparisons' dealer rotates: parties 1, 2, 0, then 1.
    let gates = ([36u64, 36, 16, 16].into_iter().zip([1, 2, 0, 1]))
        .fold(Cost::FREE, |sum, (n, dealer)| {
            sum + Cost::gate(n, width, 1, dealer)
        });
    let expect = gates + Cost::input(81) + Cost::reveal(16);
    assert_eq!(estimate.parties + estimate.input, expect);
    let total = estimate.total();
    assert_eq!(
        (total.bytes_sent, total.rounds),
        (expect.bytes(), expect.rounds)
    );
    assert_eq!(total.rounds, 16);
}

#[test]
fn average_pool() {
    let ap = |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| {
        pool("AveragePool", name, 13, dims, attrs)
    };
    let k3s2p1 = || {
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ]
    };
    let with = |mut attrs: Vec<Attr>, extra: Attr| {
        attrs.push(extra);
        attrs
    };
    run_all(vec![
        ap("avgpool-k2", IMAGE, vec![ints("kernel_shape", &[2, 2])]),
        ap(
            "avgpool-k3-s2",
            IMAGE,
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        // border windows hold 4 or 6 real values out of 9: the divisor differs per position
        ap("avgpool-pads-exclude", IMAGE, k3s2p1()),
        ap(
            "avgpool-pads-exclude-explicit",
            IMAGE,
            with(k3s2p1(), int("count_include_pad", 0)),
        ),
        ap(
            "avgpool-pads-include",
            IMAGE,
            with(k3s2p1(), int("count_include_pad", 1)),
        ),
        ap(
            "avgpool-asym-pads-exclude",
            IMAGE,
            vec![ints("kernel_shape", &[2, 3]), ints("pads", &[0, 2, 1, 0])],
        ),
        ap(
            "avgpool-asym-pads-include",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 3]),
                ints("pads", &[0, 2, 1, 0]),
                int("count_include_pad", 1),
            ],
        ),
        // 7 with kernel 2 stride 2: ceil adds a last window holding one column of the input
        ap(
            "avgpool-ceil",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool-ceil-include",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
                int("count_include_pad", 1),
            ],
        ),
        ap(
            "avgpool-ceil-pads",
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool-same-upper",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        ),
        ap(
            "avgpool-same-lower",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_LOWER")],
        ),
        ap(
            "avgpool1d",
            SIGNAL,
            vec![ints("kernel_shape", &[3]), ints("strides", &[2])],
        ),
        ap(
            "avgpool1d-pads-exclude",
            SIGNAL,
            vec![ints("kernel_shape", &[3]), ints("pads", &[2, 1])],
        ),
        ap(
            "avgpool1d-pads-include",
            SIGNAL,
            vec![
                ints("kernel_shape", &[3]),
                ints("pads", &[2, 1]),
                int("count_include_pad", 1),
            ],
        ),
        ap(
            "avgpool1d-ceil",
            SIGNAL,
            vec![
                ints("kernel_shape", &[2]),
                ints("strides", &[2]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool3d-pads",
            &[N, Some(2), Some(4), Some(4), Some(3)],
            vec![
                ints("kernel_shape", &[2, 2, 2]),
                ints("pads", &[1, 0, 0, 0, 1, 1]),
            ],
        ),
        // dilations exist from opset 19
        pool(
            "AveragePool",
            "avgpool-opset19-dilations",
            19,
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[2, 2]),
                ints("pads", &[1, 1, 0, 0]),
            ],
        ),
    ]);
}

#[test]
fn global_pools() {
    let mut cases = vec![];
    for op in ["GlobalAveragePool", "GlobalMaxPool"] {
        let lower = op.to_lowercase();
        cases.push(pool(
            op,
            &format!("{lower}-2d"),
            13,
            &[N, Some(3), Some(5), Some(4)],
            vec![],
        ));
        cases.push(pool(
            op,
            &format!("{lower}-1d"),
            13,
            &[N, Some(4), Some(6)],
            vec![],
        ));
        cases.push(pool(
            op,
            &format!("{lower}-3d"),
            13,
            &[N, Some(2), Some(3), Some(3), Some(2)],
            vec![],
        ));
    }
    run_all(cases);
}

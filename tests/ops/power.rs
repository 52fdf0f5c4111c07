//! Div by a secret or a constant, and Pow with constant exponents (src/lower/power.rs).

use super::with_positive;
use crate::common::cases::*;

#[test]
fn division_and_powers() {
    let pow = |p: f32| {
        with_positive(&format!("pow{p}"), 13, 0.5)
            .scalar("e", p)
            .node("Pow", &["p", "e"], &["y"], vec![])
            .output("y")
            .relative_tolerance(2e-4)
    };
    run_all(vec![
        with_positive("div-secret", 13, 0.5)
            .node("Div", &["x", "p"], &["y"], vec![])
            .output("y"),
        case("div-constant", 13)
            .input("x", &[N, Some(4)])
            .init("d", &ndarray::arr1(&[2.0f32, -4.0, 0.5, 8.0]).into_dyn())
            .node("Div", &["x", "d"], &["y"], vec![])
            .output("y"),
        pow(1.0),
        pow(2.0),
        pow(3.0),
        pow(5.0),
        pow(-1.0),
        pow(-2.0),
        pow(0.5),
        pow(-0.5),
        pow(1.7),
    ]);
}

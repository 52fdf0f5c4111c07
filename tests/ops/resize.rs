//! Resize in nearest mode (src/lower/resize.rs): by scales or by sizes (with an aspect-ratio
//! policy), under coordinate transformation and rounding modes.

use super::{str_attr, tensor};
use crate::common::Attr;
use crate::common::cases::*;

#[test]
fn resize() {
    let x: &[Option<i64>] = &[N, Some(2), Some(3), Some(4)];
    let scaled = |name: &str, opset: i64, scales: &[f32], attrs: Vec<Attr>| {
        // tract reads Resize-11 inputs by position, so the unused roi is given
        let ins: &[&str] = match opset {
            ..11 => &["x", "scales"],
            11 => &["x", "roi", "scales"],
            _ => &["x", "", "scales"],
        };
        case(name, opset)
            .input("x", x)
            .init(
                "roi",
                &tensor(&[8], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]),
            )
            .init("scales", &tensor(&[4], scales))
            .node("Resize", ins, &["y"], attrs)
            .output("y")
    };
    let sized = |name: &str, sizes: &[i64], mut attrs: Vec<Attr>| {
        attrs.push(ints("axes", &[2, 3]));
        case(name, 18)
            .input("x", x)
            .init_i64("sizes", sizes)
            .node("Resize", &["x", "", "", "sizes"], &["y"], attrs)
            .output("y")
    };
    let coord = |mode: &'static str| str_attr("coordinate_transformation_mode", mode);
    let nearest = |mode: &'static str| str_attr("nearest_mode", mode);
    run_all(vec![
        scaled("resize10-upsample", 10, &[1.0, 1.0, 2.0, 3.0], vec![]),
        scaled("resize13-half-pixel", 13, &[1.0, 1.0, 2.0, 2.0], vec![]),
        scaled(
            "resize13-half-pixel-down",
            13,
            &[1.0, 1.0, 0.5, 0.75],
            vec![str_attr("mode", "nearest")],
        ),
        scaled(
            "resize13-align-corners",
            13,
            &[1.0, 1.0, 1.5, 1.75],
            vec![coord("align_corners")],
        ),
        // ties at .5: round_prefer_floor (the default) and round_prefer_ceil differ
        scaled(
            "resize13-asymmetric",
            13,
            &[1.0, 1.0, 2.0, 2.0],
            vec![coord("asymmetric")],
        ),
        scaled(
            "resize13-asymmetric-prefer-ceil",
            13,
            &[1.0, 1.0, 2.0, 2.0],
            vec![coord("asymmetric"), nearest("round_prefer_ceil")],
        ),
        scaled(
            "resize13-asymmetric-floor",
            13,
            &[1.0, 1.0, 2.5, 1.5],
            vec![coord("asymmetric"), nearest("floor")],
        ),
        // an output of length 1 (3 * 0.34) reads index 0 here, 1 with half_pixel
        scaled(
            "resize13-pytorch-half-pixel-ceil",
            13,
            &[1.0, 1.0, 0.34, 0.5],
            vec![coord("pytorch_half_pixel"), nearest("ceil")],
        ),
        scaled(
            "resize11-tf-half-pixel",
            11,
            &[1.0, 1.0, 2.0, 1.5],
            vec![coord("tf_half_pixel_for_nn")],
        ),
        // 3 * 0.6 rounds down to 1 output, which the symmetric offset moves to index 1
        scaled(
            "resize19-half-pixel-symmetric",
            19,
            &[1.0, 1.0, 0.6, 1.3],
            vec![coord("half_pixel_symmetric")],
        ),
        sized("resize18-sizes-axes", &[5, 7], vec![]),
        sized(
            "resize18-not-larger",
            &[5, 5],
            vec![str_attr("keep_aspect_ratio_policy", "not_larger")],
        ),
        sized(
            "resize18-not-smaller",
            &[5, 5],
            vec![str_attr("keep_aspect_ratio_policy", "not_smaller")],
        ),
    ]);
}

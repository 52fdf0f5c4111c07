//! Grouped N-D convolution (ONNX `Conv` semantics, no bias) over any [`Elem`], by im2col onto
//! the matrix kernel: one `[M/g, C/g*K] x [C/g*K, positions]` product per image and group.

use super::{Elem, window::Window};
use anyhow::{Result, ensure};
use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

/// `x: [N, C, spatial...]`, `w: [M, C/groups, kernel...]` -> `[N, M, output...]`.
pub fn conv<E: Elem>(
    x: &ArrayViewD<E>,
    w: &ArrayViewD<E>,
    window: &Window,
    groups: usize,
) -> Result<ArrayD<E>> {
    let rank = window.rank();
    ensure!(
        x.ndim() == rank + 2 && w.ndim() == rank + 2,
        "conv expects rank-{} input and weight, got {:?} and {:?}",
        rank + 2,
        x.shape(),
        w.shape()
    );
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let m = w.shape()[0];
    ensure!(
        groups > 0 && c.is_multiple_of(groups) && m.is_multiple_of(groups),
        "{c} input and {m} output channels do not split into {groups} groups"
    );
    let (cg, mg) = (c / groups, m / groups);
    ensure!(
        w.shape()[1] == cg,
        "conv weight has {} input channels per group, the input has {cg}",
        w.shape()[1]
    );
    ensure!(
        w.shape()[2..] == window.kernel[..],
        "conv weight kernel {:?} differs from the window {:?}",
        &w.shape()[2..],
        window.kernel
    );
    let spatial = &x.shape()[2..];
    let taps = window.taps(spatial)?;
    let plane: usize = spatial.iter().product();
    let positions = taps.positions();
    let x = x.as_standard_layout();
    let w = w.as_standard_layout();
    let (xs, ws) = (
        x.as_slice().expect("standard layout"),
        w.as_slice().expect("standard layout"),
    );
    let kdim = cg * taps.kernel_size;
    let mut out = vec![E::ZERO; n * m * positions];
    out.par_chunks_mut(m * positions)
        .enumerate()
        .for_each(|(img, out_img)| {
            let image = &xs[img * c * plane..(img + 1) * c * plane];
            let mut cols = Vec::with_capacity(kdim * positions);
            for g in 0..groups {
                taps.im2col(image, plane, g * cg..(g + 1) * cg, &mut cols);
                E::gemm(
                    mg,
                    kdim,
                    positions,
                    &ws[g * mg * kdim..(g + 1) * mg * kdim],
                    &cols,
                    &mut out_img[g * mg * positions..(g + 1) * mg * positions],
                );
            }
        });
    taps.shaped(&[n, m], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    /// Direct-loop 2-D reference, written independently of the tap table.
    fn direct(
        x: &ArrayD<f32>,
        w: &ArrayD<f32>,
        s: usize,
        p: usize,
        d: usize,
        groups: usize,
    ) -> ArrayD<f32> {
        let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
        let (m, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        let oh = (h + 2 * p - d * (kh - 1) - 1) / s + 1;
        let ow = (wd + 2 * p - d * (kw - 1) - 1) / s + 1;
        let mg = m / groups;
        let _ = c;
        ArrayD::from_shape_fn(IxDyn(&[n, m, oh, ow]), |ix| {
            let (b, o, y, z) = (ix[0], ix[1], ix[2], ix[3]);
            let g = o / mg;
            let mut acc = 0.0;
            for ci in 0..cg {
                for i in 0..kh {
                    for j in 0..kw {
                        let yy = (y * s + i * d) as isize - p as isize;
                        let zz = (z * s + j * d) as isize - p as isize;
                        if yy >= 0 && zz >= 0 && (yy as usize) < h && (zz as usize) < wd {
                            acc += x[[b, g * cg + ci, yy as usize, zz as usize]] * w[[o, ci, i, j]];
                        }
                    }
                }
            }
            acc
        })
    }

    #[test]
    fn matches_direct_convolution_across_attributes() {
        for &(c, m, groups, s, p, d) in &[
            (3, 4, 1, 1, 0, 1),
            (4, 6, 2, 2, 1, 1),
            (4, 4, 4, 1, 2, 2),
            (2, 3, 1, 3, 1, 2),
        ] {
            let x = ArrayD::from_shape_fn(IxDyn(&[2, c, 7, 6]), |ix| {
                ((ix[1] * 31 + ix[2] * 7 + ix[3] * 3 + ix[0]) % 11) as f32 - 5.0
            });
            let w = ArrayD::from_shape_fn(IxDyn(&[m, c / groups, 3, 3]), |ix| {
                ((ix[0] * 5 + ix[1] * 3 + ix[2] + ix[3] * 2) % 7) as f32 - 3.0
            });
            let window = Window {
                kernel: vec![3, 3],
                strides: vec![s, s],
                dilations: vec![d, d],
                pads_begin: vec![p, p],
                pads_end: vec![p, p],
                ceil_mode: false,
            };
            let got = conv(&x.view(), &w.view(), &window, groups).unwrap();
            assert_eq!(
                got,
                direct(&x, &w, s, p, d, groups),
                "c={c} m={m} g={groups} s={s} p={p} d={d}"
            );
        }
    }
}

//! Numpy `matmul` semantics (1-D promotion, broadcast batch dimensions) over any [`Elem`].

use super::{Elem, broadcast::broadcast_shape};
use anyhow::{Result, bail};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

pub fn matmul<E: Elem>(a: &ArrayViewD<E>, b: &ArrayViewD<E>) -> Result<ArrayD<E>> {
    if a.ndim() == 0 || b.ndim() == 0 {
        bail!(
            "matmul operands must have rank >= 1, got {:?} and {:?}",
            a.shape(),
            b.shape()
        );
    }
    // Promote vectors to matrices as numpy does, and drop the added axis afterwards.
    let a2 = if a.ndim() == 1 {
        a.clone().insert_axis(ndarray::Axis(0))
    } else {
        a.clone()
    };
    let b2 = if b.ndim() == 1 {
        b.clone().insert_axis(ndarray::Axis(1))
    } else {
        b.clone()
    };
    let (m, k) = (a2.shape()[a2.ndim() - 2], a2.shape()[a2.ndim() - 1]);
    let (k2, n) = (b2.shape()[b2.ndim() - 2], b2.shape()[b2.ndim() - 1]);
    if k != k2 {
        bail!(
            "matmul inner dimensions differ: {:?} x {:?}",
            a.shape(),
            b.shape()
        );
    }
    let batch = broadcast_shape(&a2.shape()[..a2.ndim() - 2], &b2.shape()[..b2.ndim() - 2])?;
    let with_mat = |r: usize, c: usize| batch.iter().copied().chain([r, c]).collect::<Vec<_>>();
    let a3 = a2
        .broadcast(IxDyn(&with_mat(m, k)))
        .expect("batch dims broadcast")
        .as_standard_layout()
        .into_owned();
    let b3 = b2
        .broadcast(IxDyn(&with_mat(k, n)))
        .expect("batch dims broadcast")
        .as_standard_layout()
        .into_owned();
    let (a_flat, b_flat) = (
        a3.as_slice().expect("standard layout"),
        b3.as_slice().expect("standard layout"),
    );
    let batches: usize = batch.iter().product();
    let mut out = vec![E::ZERO; batches * m * n];
    for i in 0..batches {
        E::gemm(
            m,
            k,
            n,
            &a_flat[i * m * k..(i + 1) * m * k],
            &b_flat[i * k * n..(i + 1) * k * n],
            &mut out[i * m * n..(i + 1) * m * n],
        );
    }
    let mut shape = with_mat(m, n);
    if b.ndim() == 1 {
        shape.pop();
    }
    if a.ndim() == 1 {
        shape.remove(shape.len() - if b.ndim() == 1 { 1 } else { 2 });
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), out)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    #[test]
    fn matches_float_dot_for_matrices_and_batches() {
        let a = Array::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f32 * 0.1)
            .into_dyn();
        let b = Array::from_shape_fn((4, 5), |(i, j)| (i as f32) - (j as f32) * 0.3).into_dyn();
        let c = matmul(&a.view(), &b.view()).unwrap();
        assert_eq!(c.shape(), &[2, 3, 5]);
        let b2 = b.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
        for i in 0..2 {
            let ai = a
                .index_axis(ndarray::Axis(0), i)
                .into_dimensionality::<ndarray::Ix2>()
                .unwrap();
            let expect = ai.dot(&b2);
            let got = c.index_axis(ndarray::Axis(0), i);
            for (x, y) in expect.iter().zip(got.iter()) {
                assert!((x - y).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn wraps_for_transposed_strided_and_batched_u64_views() {
        let word = |i: usize| {
            (i as u64 + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(i as u32)
        };
        // A as the transpose of a [9, 2, 13] array, B as every other row of a [18, 11] one.
        let at = Array::from_shape_fn((9, 2, 13), |(p, b, i)| word(p * 26 + b * 13 + i));
        let a = at.view().permuted_axes([1, 2, 0]).into_dyn();
        let bs = Array::from_shape_fn((18, 11), |(p, j)| word(1000 + p * 11 + j));
        let b = bs.slice(ndarray::s![..;2, ..]).into_dyn();
        let c = matmul(&a, &b).unwrap();
        assert_eq!(c.shape(), &[2, 13, 11]);
        for ((batch, i, j), &got) in c
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap()
            .indexed_iter()
        {
            let expect = (0..9).fold(0u64, |acc, p| {
                acc.wrapping_add(at[[p, batch, i]].wrapping_mul(bs[[2 * p, j]]))
            });
            assert_eq!(got, expect, "at {batch},{i},{j}");
        }
    }

    #[test]
    fn promotes_vectors() {
        let v = ndarray::arr1(&[1u64, 2, 3]).into_dyn();
        let m = Array::from_shape_fn((3, 2), |(i, j)| (i + j) as u64).into_dyn();
        assert_eq!(
            matmul(&v.view(), &m.view()).unwrap(),
            ndarray::arr1(&[8u64, 14]).into_dyn()
        );
        assert_eq!(
            matmul(&v.view(), &v.view()).unwrap().shape(),
            &[] as &[usize]
        );
        assert!(matmul(&m.view(), &m.view()).is_err());
    }
}

//! Data movement and reductions over any [`Elem`]: reshape, transpose, concat, sum over axes.

use super::Elem;
use anyhow::{Result, ensure};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

pub fn reshape<E: Elem>(x: &ArrayViewD<E>, shape: &[usize]) -> Result<ArrayD<E>> {
    ensure!(
        x.len() == shape.iter().product::<usize>(),
        "cannot reshape {:?} ({} elements) to {shape:?}",
        x.shape(),
        x.len()
    );
    Ok(x.as_standard_layout()
        .into_owned()
        .into_shape_with_order(IxDyn(shape))?)
}

pub fn transpose<E: Elem>(x: &ArrayViewD<E>, perm: &[usize]) -> Result<ArrayD<E>> {
    let mut seen = vec![false; x.ndim()];
    ensure!(
        perm.len() == x.ndim()
            && perm
                .iter()
                .all(|&p| p < x.ndim() && !std::mem::replace(&mut seen[p], true)),
        "{perm:?} is not a permutation of the {} axes of {:?}",
        x.ndim(),
        x.shape()
    );
    Ok(x.clone()
        .permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned())
}

pub fn concat<E: Elem>(xs: &[ArrayViewD<E>], axis: usize) -> Result<ArrayD<E>> {
    ensure!(!xs.is_empty(), "concat of nothing");
    ensure!(
        axis < xs[0].ndim(),
        "concat axis {axis} out of range for rank {}",
        xs[0].ndim()
    );
    Ok(ndarray::concatenate(Axis(axis), xs)?)
}

/// Sum over `axes` (ascending, distinct), keeping them as size-1 axes when `keep_dims`.
pub fn reduce_sum<E: Elem>(
    x: &ArrayViewD<E>,
    axes: &[usize],
    keep_dims: bool,
) -> Result<ArrayD<E>> {
    ensure!(
        axes.iter().all(|&a| a < x.ndim()),
        "reduce axes {axes:?} out of range for rank {}",
        x.ndim()
    );
    let mut out = x.to_owned();
    for &axis in axes.iter().rev() {
        out = out.fold_axis(Axis(axis), E::ZERO, |&acc, &v| acc.add(v));
        if keep_dims {
            out.insert_axis_inplace(Axis(axis));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_and_moves_data() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1u64, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(
            reduce_sum(&x.view(), &[1], true)
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            vec![6, 15]
        );
        assert_eq!(
            reduce_sum(&x.view(), &[0, 1], false).unwrap().shape(),
            &[] as &[usize]
        );
        let t = transpose(&x.view(), &[1, 0]).unwrap();
        assert_eq!(t.into_raw_vec_and_offset().0, vec![1, 4, 2, 5, 3, 6]);
        assert!(transpose(&x.view(), &[0, 0]).is_err());
        assert_eq!(concat(&[x.view(), x.view()], 1).unwrap().shape(), &[2, 6]);
        assert!(reshape(&x.view(), &[4]).is_err());
    }
}

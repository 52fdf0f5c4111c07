//! Numpy-style broadcasting for element-wise binary operations.

use super::Elem;
use anyhow::{Result, bail};
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

/// The shape two operands broadcast to, or an error naming both shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => bail!("shapes {a:?} and {b:?} do not broadcast"),
        })
        .collect()
}

/// `f(a, b)` element-wise after broadcasting both operands to their common shape.
pub fn zip_with<E: Elem>(
    a: &ArrayViewD<E>,
    b: &ArrayViewD<E>,
    f: impl Fn(E, E) -> E + Sync + Send,
) -> Result<ArrayD<E>> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let (av, bv) = (stretch(a, &shape)?, stretch(b, &shape)?);
    Ok(Zip::from(&av).and(&bv).map_collect(|&x, &y| f(x, y)))
}

/// `condition ? a : b` element-wise, all three broadcast to their common shape (ONNX Where).
/// Linear in `(a, b)` for a fixed condition.
pub fn select<E: Elem>(
    condition: &ArrayViewD<bool>,
    a: &ArrayViewD<E>,
    b: &ArrayViewD<E>,
) -> Result<ArrayD<E>> {
    let shape = broadcast_shape(&broadcast_shape(condition.shape(), a.shape())?, b.shape())?;
    let (cv, av, bv) = (
        stretch(condition, &shape)?,
        stretch(a, &shape)?,
        stretch(b, &shape)?,
    );
    Ok(Zip::from(&cv)
        .and(&av)
        .and(&bv)
        .map_collect(|&c, &x, &y| if c { x } else { y }))
}

/// A view of `x` broadcast to `shape`.
fn stretch<'a, T>(x: &'a ArrayViewD<T>, shape: &[usize]) -> Result<ArrayViewD<'a, T>> {
    match x.broadcast(IxDyn(shape)) {
        Some(v) => Ok(v),
        None => bail!("cannot broadcast {:?} to {shape:?}", x.shape()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_like_numpy() {
        assert_eq!(broadcast_shape(&[2, 3, 4], &[4]).unwrap(), vec![2, 3, 4]);
        assert_eq!(broadcast_shape(&[2, 1, 4], &[3, 1]).unwrap(), vec![2, 3, 4]);
        assert!(broadcast_shape(&[2, 3], &[4]).is_err());
        let a = ndarray::arr2(&[[1u64, 2], [3, 4]]).into_dyn();
        let b = ndarray::arr1(&[10u64, u64::MAX]).into_dyn();
        let c = zip_with(&a.view(), &b.view(), |x, y| x.add(y)).unwrap();
        assert_eq!(c, ndarray::arr2(&[[11u64, 1], [13, 3]]).into_dyn());
    }

    #[test]
    fn selects_with_broadcasting() {
        let condition = ndarray::arr1(&[true, false]).into_dyn();
        let a = ndarray::arr2(&[[1u64, 2], [3, 4]]).into_dyn();
        let b = ndarray::arr0(9u64).into_dyn();
        let c = select(&condition.view(), &a.view(), &b.view()).unwrap();
        assert_eq!(c, ndarray::arr2(&[[1u64, 9], [3, 9]]).into_dyn());
        let wide = ndarray::arr1(&[true, false, true]).into_dyn();
        assert!(select(&wide.view(), &a.view(), &b.view()).is_err());
    }
}

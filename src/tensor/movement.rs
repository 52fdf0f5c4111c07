//! Data movement with index sets fixed at convert time, over any [`Elem`]: strided slices,
//! gathers along one axis or element by element, tiling, zero padding and broadcasting to a
//! shape. Each is linear with no constant term, so it applies to share components one by one.

use super::Elem;
use anyhow::{Result, anyhow, ensure};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};
use serde::{Deserialize, Serialize};

/// The `len` elements `start, start + step, ...` along `axis`; `step` may be negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisSlice {
    pub axis: usize,
    pub start: usize,
    pub len: usize,
    pub step: isize,
}

impl AxisSlice {
    /// The lowest and highest index taken, or `None` for an empty slice.
    fn bounds(&self) -> Option<(isize, isize)> {
        let (first, last) = (
            self.start as isize,
            self.start as isize + (self.len as isize - 1) * self.step,
        );
        match (self.len, self.step > 0) {
            (0, _) => None,
            (_, true) => Some((first, last)),
            (_, false) => Some((last, first)),
        }
    }

    /// The same elements as an ndarray slice, which walks its range backwards for a
    /// negative step.
    fn to_ndarray(self) -> Slice {
        match self.bounds() {
            Some((low, high)) => Slice::new(low, Some(high + 1), self.step),
            None => Slice::new(0, Some(0), 1),
        }
    }
}

pub fn slice<E: Elem>(x: &ArrayViewD<E>, slices: &[AxisSlice]) -> Result<ArrayD<E>> {
    let mut view = x.view();
    for s in slices {
        ensure!(
            s.axis < x.ndim() && s.step != 0,
            "slice {s:?} does not fit shape {:?}",
            x.shape()
        );
        let dim = x.shape()[s.axis] as isize;
        ensure!(
            s.bounds().is_none_or(|(low, high)| low >= 0 && high < dim),
            "slice {s:?} is out of range for shape {:?}",
            x.shape()
        );
        view.slice_axis_inplace(Axis(s.axis), s.to_ndarray());
    }
    Ok(view.to_owned())
}

/// The entries `indices` of `axis`, in that order.
pub fn gather<E: Elem>(x: &ArrayViewD<E>, axis: usize, indices: &[usize]) -> Result<ArrayD<E>> {
    ensure!(
        axis < x.ndim() && indices.iter().all(|&i| i < x.shape()[axis]),
        "gather of {indices:?} along axis {axis} is out of range for shape {:?}",
        x.shape()
    );
    Ok(x.select(Axis(axis), indices))
}

/// ONNX GatherElements: `out[p] = x[p with p[axis] replaced by indices[p]]`, where `indices`
/// is row-major of shape `shape`.
pub fn gather_elements<E: Elem>(
    x: &ArrayViewD<E>,
    axis: usize,
    indices: &[usize],
    shape: &[usize],
) -> Result<ArrayD<E>> {
    let fits = shape.len() == x.ndim()
        && axis < x.ndim()
        && shape
            .iter()
            .zip(x.shape())
            .enumerate()
            .all(|(a, (&s, &d))| a == axis || s <= d)
        && indices.iter().all(|&i| i < x.shape()[axis]);
    ensure!(
        fits,
        "gather_elements along axis {axis} with indices of shape {shape:?} does not fit shape {:?}",
        x.shape()
    );
    let index = ArrayViewD::from_shape(IxDyn(shape), indices)?;
    Ok(ArrayD::from_shape_fn(IxDyn(shape), |position| {
        let mut source = position.clone();
        source[axis] = index[&position];
        x[source]
    }))
}

/// `repeats[a]` copies of `x` laid end to end along each axis `a`.
pub fn tile<E: Elem>(x: &ArrayViewD<E>, repeats: &[usize]) -> Result<ArrayD<E>> {
    ensure!(
        repeats.len() == x.ndim() && repeats.iter().all(|&r| r > 0),
        "tile repeats {repeats:?} do not fit shape {:?}",
        x.shape()
    );
    let mut out = x.to_owned();
    for (axis, &r) in repeats.iter().enumerate().filter(|&(_, &r)| r > 1) {
        let copies = vec![out.view(); r];
        out = ndarray::concatenate(Axis(axis), &copies)?;
    }
    Ok(out)
}

/// `x` with `begin[a]` zeros before and `end[a]` zeros after it along each axis `a`.
pub fn pad<E: Elem>(x: &ArrayViewD<E>, begin: &[usize], end: &[usize]) -> Result<ArrayD<E>> {
    ensure!(
        begin.len() == x.ndim() && end.len() == x.ndim(),
        "pads {begin:?}, {end:?} do not fit shape {:?}",
        x.shape()
    );
    let shape: Vec<usize> = (0..x.ndim())
        .map(|a| begin[a] + x.shape()[a] + end[a])
        .collect();
    let mut out = ArrayD::from_elem(IxDyn(&shape), E::ZERO);
    out.slice_each_axis_mut(|ax| {
        let a = ax.axis.index();
        Slice::from(begin[a]..begin[a] + x.shape()[a])
    })
    .assign(x);
    Ok(out)
}

/// `x` broadcast to `shape` by numpy rules.
pub fn broadcast_to<E: Elem>(x: &ArrayViewD<E>, shape: &[usize]) -> Result<ArrayD<E>> {
    x.broadcast(IxDyn(shape))
        .map(|v| v.to_owned())
        .ok_or_else(|| anyhow!("cannot broadcast shape {:?} to {shape:?}", x.shape()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> ArrayD<u64> {
        ArrayD::from_shape_vec(IxDyn(&[2, 5]), (0..10).collect()).unwrap()
    }

    fn flat(a: ArrayD<u64>) -> Vec<u64> {
        a.iter().copied().collect()
    }

    #[test]
    fn slices_forwards_and_backwards() {
        let step2 = AxisSlice {
            axis: 1,
            start: 1,
            len: 2,
            step: 2,
        };
        assert_eq!(flat(slice(&x().view(), &[step2]).unwrap()), [1, 3, 6, 8]);
        let reversed = AxisSlice {
            axis: 1,
            start: 4,
            len: 3,
            step: -2,
        };
        let rows = AxisSlice {
            axis: 0,
            start: 1,
            len: 1,
            step: 1,
        };
        assert_eq!(
            flat(slice(&x().view(), &[rows, reversed]).unwrap()),
            [9, 7, 5]
        );
        let empty = AxisSlice { len: 0, ..rows };
        assert_eq!(slice(&x().view(), &[empty]).unwrap().shape(), &[0, 5]);
        let too_far = AxisSlice { len: 4, ..step2 };
        assert!(slice(&x().view(), &[too_far]).is_err());
    }

    #[test]
    fn gathers_by_axis_and_by_element() {
        assert_eq!(
            flat(gather(&x().view(), 1, &[4, 0, 4]).unwrap()),
            [4, 0, 4, 9, 5, 9]
        );
        assert!(gather(&x().view(), 0, &[2]).is_err());
        // out[i][j] = x[indices[i][j]][j]
        let got = gather_elements(&x().view(), 0, &[1, 0, 1], &[1, 3]).unwrap();
        assert_eq!(flat(got), [5, 1, 7]);
        let got = gather_elements(&x().view(), 1, &[4, 4, 0, 1], &[2, 2]).unwrap();
        assert_eq!(flat(got), [4, 4, 5, 6]);
        assert!(gather_elements(&x().view(), 1, &[5], &[1, 1]).is_err());
    }

    #[test]
    fn tiles_pads_and_broadcasts() {
        let row = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![1u64, 2]).unwrap();
        assert_eq!(
            flat(tile(&row.view(), &[2, 2]).unwrap()),
            [1, 2, 1, 2, 1, 2, 1, 2]
        );
        assert!(tile(&row.view(), &[0, 1]).is_err());
        let padded = pad(&row.view(), &[1, 0], &[0, 2]).unwrap();
        assert_eq!(padded.shape(), &[2, 4]);
        assert_eq!(flat(padded), [0, 0, 0, 0, 1, 2, 0, 0]);
        assert_eq!(
            flat(broadcast_to(&row.view(), &[2, 1, 2]).unwrap()),
            [1, 2, 1, 2]
        );
        assert!(broadcast_to(&row.view(), &[3]).is_err());
    }
}

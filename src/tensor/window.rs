//! Sliding-window geometry shared by convolution and pooling, for any number of spatial
//! dimensions (1-D, 2-D, 3-D), in ONNX's NC[spatial...] layout.
//!
//! A window is resolved once into a tap table: for each output position and kernel offset,
//! the flat spatial index of the input element it reads, or none when it falls in padding.
//! Convolution (im2col), max pooling and sum pooling are then plain gathers over that table.

use super::Elem;
use anyhow::{Result, bail, ensure};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    /// Output size rounds up (ONNX `ceil_mode`); windows starting in the end padding are dropped.
    pub ceil_mode: bool,
}

/// Marks a tap that reads padding.
const PAD: u32 = u32::MAX;

/// A window resolved against one input size.
pub struct Taps {
    pub output: Vec<usize>,
    /// Kernel elements per window.
    pub kernel_size: usize,
    /// `[kernel offset][output position]` -> flat input spatial index, or `PAD`: each kernel
    /// offset is one contiguous run, as im2col and pooling walk it.
    index: Vec<u32>,
}

impl Window {
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    fn check(&self) -> Result<()> {
        let r = self.rank();
        ensure!(
            [
                self.strides.len(),
                self.dilations.len(),
                self.pads_begin.len(),
                self.pads_end.len()
            ]
            .iter()
            .all(|&l| l == r),
            "window attributes disagree on the number of spatial dimensions"
        );
        ensure!(
            self.strides
                .iter()
                .chain(&self.dilations)
                .chain(&self.kernel)
                .all(|&v| v > 0),
            "window sizes must be positive"
        );
        Ok(())
    }

    /// The spatial output size for a spatial input size.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.check()?;
        ensure!(
            input.len() == self.rank(),
            "input has {} spatial dims, window {}",
            input.len(),
            self.rank()
        );
        (0..self.rank())
            .map(|d| {
                let extent = self.dilations[d] * (self.kernel[d] - 1) + 1;
                let padded = input[d] + self.pads_begin[d] + self.pads_end[d];
                if padded < extent {
                    bail!("window of extent {extent} does not fit a padded input of size {padded} in spatial dim {d}");
                }
                let span = padded - extent;
                let s = self.strides[d];
                let mut out = if self.ceil_mode { span.div_ceil(s) + 1 } else { span / s + 1 };
                if self.ceil_mode && (out - 1) * s >= input[d] + self.pads_begin[d] {
                    out -= 1;
                }
                Ok(out)
            })
            .collect()
    }

    pub fn taps(&self, input: &[usize]) -> Result<Taps> {
        let output = self.output_shape(input)?;
        let kernel_size: usize = self.kernel.iter().product();
        let positions: usize = output.iter().product();
        let mut index = Vec::with_capacity(positions * kernel_size);
        let mut out_pos = vec![0usize; self.rank()];
        let mut k_pos = vec![0usize; self.rank()];
        for kk in 0..kernel_size {
            unravel(kk, &self.kernel, &mut k_pos);
            for op in 0..positions {
                unravel(op, &output, &mut out_pos);
                let mut flat = 0usize;
                let mut inside = true;
                for d in 0..self.rank() {
                    let at = (out_pos[d] * self.strides[d] + k_pos[d] * self.dilations[d]) as isize
                        - self.pads_begin[d] as isize;
                    if at < 0 || at >= input[d] as isize {
                        inside = false;
                        break;
                    }
                    flat = flat * input[d] + at as usize;
                }
                index.push(if inside { flat as u32 } else { PAD });
            }
        }
        Ok(Taps {
            output,
            kernel_size,
            index,
        })
    }

    /// ONNX AveragePool divisors per output position: the window clipped to the padded input
    /// when padding counts, else to the input itself (onnxruntime's rule, also for ceil_mode).
    pub fn average_divisors(&self, input: &[usize], count_include_pad: bool) -> Result<Vec<f32>> {
        let output = self.output_shape(input)?;
        let positions: usize = output.iter().product();
        let mut out_pos = vec![0usize; self.rank()];
        Ok((0..positions)
            .map(|op| {
                unravel(op, &output, &mut out_pos);
                (0..self.rank())
                    .map(|d| {
                        let start =
                            (out_pos[d] * self.strides[d]) as isize - self.pads_begin[d] as isize;
                        let (lo, hi) = if count_include_pad {
                            (
                                -(self.pads_begin[d] as isize),
                                (input[d] + self.pads_end[d]) as isize,
                            )
                        } else {
                            (0, input[d] as isize)
                        };
                        // Count the dilated taps that land in [lo, hi).
                        (0..self.kernel[d] as isize)
                            .map(|k| start + k * self.dilations[d] as isize)
                            .filter(|&at| at >= lo && at < hi)
                            .count()
                    })
                    .product::<usize>() as f32
            })
            .collect())
    }
}

pub(super) fn unravel(mut flat: usize, shape: &[usize], out: &mut [usize]) {
    for d in (0..shape.len()).rev() {
        out[d] = flat % shape[d];
        flat /= shape[d];
    }
}

/// Splits `[N, C, spatial...]` into (N, C, spatial sizes).
fn split_nc(shape: &[usize], rank: usize) -> Result<(usize, usize, &[usize])> {
    ensure!(
        shape.len() == rank + 2,
        "expected an [N, C, {rank} spatial dims] tensor, got shape {shape:?}"
    );
    Ok((shape[0], shape[1], &shape[2..]))
}

impl Taps {
    /// `data` as an array of shape `[leading..., output...]`.
    pub fn shaped<E: Elem>(&self, leading: &[usize], data: Vec<E>) -> Result<ArrayD<E>> {
        let shape: Vec<usize> = leading.iter().chain(&self.output).copied().collect();
        Ok(ArrayD::from_shape_vec(IxDyn(&shape), data)?)
    }

    pub fn positions(&self) -> usize {
        self.index.len() / self.kernel_size
    }

    fn tap(&self, op: usize, kk: usize) -> Option<usize> {
        let i = self.index[kk * self.positions() + op];
        (i != PAD).then_some(i as usize)
    }

    /// The input index of every output position for each kernel offset, `PAD` in padding.
    fn offsets(&self) -> std::slice::ChunksExact<'_, u32> {
        self.index.chunks_exact(self.positions().max(1))
    }

    /// im2col for one image and channel range: `[channels * kernel_size, positions]`, padding 0.
    pub fn im2col<E: Elem>(
        &self,
        image: &[E],
        spatial: usize,
        channels: std::ops::Range<usize>,
        out: &mut Vec<E>,
    ) {
        out.clear();
        for c in channels {
            let plane = &image[c * spatial..(c + 1) * spatial];
            for offset in self.offsets() {
                out.extend(
                    offset
                        .iter()
                        .map(|&i| if i == PAD { E::ZERO } else { plane[i as usize] }),
                );
            }
        }
    }
}

/// Every window's elements as separate planes: `[kernel_size, N, C, output...]`. A tap in the
/// padding repeats the first in-bounds tap of its window, so a max over the leading axis
/// ignores padding exactly, in every number domain, without a sentinel value.
pub fn window_planes<E: Elem>(x: &ArrayViewD<E>, window: &Window) -> Result<ArrayD<E>> {
    let (n, c, spatial) = split_nc(x.shape(), window.rank())?;
    let taps = window.taps(spatial)?;
    let fallback: Vec<usize> = (0..taps.positions())
        .map(|op| {
            (0..taps.kernel_size)
                .find_map(|kk| taps.tap(op, kk))
                .ok_or_else(|| anyhow::anyhow!("a pooling window lies entirely in the padding"))
        })
        .collect::<Result<_>>()?;
    let x = x.as_standard_layout();
    let flat = x.as_slice().expect("standard layout");
    let plane: usize = spatial.iter().product();
    let positions = taps.positions();
    let mut out = Vec::with_capacity(taps.kernel_size * n * c * positions);
    for offset in taps.offsets() {
        for nc in 0..n * c {
            let src = &flat[nc * plane..(nc + 1) * plane];
            let index = |(&i, &f)| if i == PAD { f } else { i as usize };
            out.extend(offset.iter().zip(&fallback).map(|p| src[index(p)]));
        }
    }
    taps.shaped(&[taps.kernel_size, n, c], out)
}

/// Sum of every window's in-bounds elements: `[N, C, output...]`.
pub fn sum_pool<E: Elem>(x: &ArrayViewD<E>, window: &Window) -> Result<ArrayD<E>> {
    let (n, c, spatial) = split_nc(x.shape(), window.rank())?;
    let taps = window.taps(spatial)?;
    let x = x.as_standard_layout();
    let flat = x.as_slice().expect("standard layout");
    let plane: usize = spatial.iter().product();
    let positions = taps.positions();
    let mut out = vec![E::ZERO; n * c * positions];
    let chunks = |len: usize| len.max(1); // an empty input or output has no chunks to walk
    for (sums, src) in out
        .chunks_exact_mut(chunks(positions))
        .zip(flat.chunks_exact(chunks(plane)))
    {
        for offset in taps.offsets() {
            for (sum, &i) in sums.iter_mut().zip(offset) {
                if i != PAD {
                    *sum = sum.add(src[i as usize]);
                }
            }
        }
    }
    taps.shaped(&[n, c], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(k: usize, s: usize, pb: usize, pe: usize, ceil: bool) -> Window {
        Window {
            kernel: vec![k],
            strides: vec![s],
            dilations: vec![1],
            pads_begin: vec![pb],
            pads_end: vec![pe],
            ceil_mode: ceil,
        }
    }

    #[test]
    fn output_sizes_follow_onnx_floor_and_ceil_rules() {
        assert_eq!(win(2, 2, 0, 0, false).output_shape(&[5]).unwrap(), vec![2]);
        assert_eq!(win(2, 2, 0, 0, true).output_shape(&[5]).unwrap(), vec![3]);
        // ceil mode never starts a window in the end padding (PyTorch/onnxruntime rule)
        assert_eq!(win(3, 2, 1, 1, true).output_shape(&[4]).unwrap(), vec![3]);
        assert_eq!(win(2, 2, 1, 1, true).output_shape(&[5]).unwrap(), vec![3]);
        assert!(win(7, 1, 0, 0, false).output_shape(&[5]).is_err());
    }

    #[test]
    fn max_planes_repeat_an_in_bounds_tap_over_padding() {
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 3]), vec![5.0f32, -1.0, 2.0]).unwrap();
        let planes = window_planes(&x.view(), &win(2, 1, 1, 1, false)).unwrap();
        assert_eq!(planes.shape(), &[2, 1, 1, 4]);
        // window 0 = [pad, 5] -> [5, 5]; window 3 = [2, pad] -> [2, 2]
        assert_eq!(
            planes.iter().copied().collect::<Vec<_>>(),
            vec![5.0, 5.0, -1.0, 2.0, 5.0, -1.0, 2.0, 2.0]
        );
    }

    #[test]
    fn sums_and_divisors_for_average_pooling() {
        let x = ArrayD::from_shape_vec(IxDyn(&[1, 1, 3]), vec![1u64, 2, 3]).unwrap();
        let w = win(2, 1, 1, 1, false);
        assert_eq!(
            sum_pool(&x.view(), &w).unwrap().into_raw_vec_and_offset().0,
            vec![1, 3, 5, 3]
        );
        assert_eq!(
            w.average_divisors(&[3], true).unwrap(),
            vec![2.0, 2.0, 2.0, 2.0]
        );
        assert_eq!(
            w.average_divisors(&[3], false).unwrap(),
            vec![1.0, 2.0, 2.0, 1.0]
        );
    }
}

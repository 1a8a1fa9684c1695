//! 3-D pooling (NDHWC): MaxPool3D, AvgPool3D and their gradients, with
//! TensorFlow's CPU semantics (Eigen's cuboid pooling):
//! - padded positions never count: AvgPool3D divides by the in-bounds
//!   elements of each window, MaxPool3D pads with the lowest finite value
//!   (so a window over padding whose elements are all -inf gives -MAX);
//! - MaxPool3DGrad gives the gradient to *every* element of a window within
//!   1e-5 of the window's value in `orig_output` (no first-wins rule).

use super::conv3d::VolGeom;
use super::conv_grad::float_dispatch;
use super::numeric::{Accumulate, Compute, Numeric, Widen};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

/// The two 3-D pools.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pool3dKind {
    Max,
    Avg,
}

/// The clipped window of output row `r`: input range per dimension.
fn window(g: &VolGeom, o: [usize; 3]) -> [std::ops::Range<usize>; 3] {
    std::array::from_fn(|i| {
        let start = (o[i] * g.strides[i]) as isize - g.pad[i] as isize;
        let end = (start + g.window[i] as isize).min(g.input[i] as isize);
        (start.max(0) as usize)..(end.max(0) as usize)
    })
}

/// Calls `f(voxel offset)` for every in-bounds input voxel of the window of
/// output position `o` in image `n`; returns whether the window hangs over
/// the padding.
fn for_each_voxel(g: &VolGeom, n: usize, o: [usize; 3], mut f: impl FnMut(usize)) -> bool {
    let [a, b, c] = window(g, o);
    let inside = a.len() * b.len() * c.len();
    for d in a {
        for h in b.clone() {
            for w in c.clone() {
                f(g.voxel(n, [d, h, w]));
            }
        }
    }
    inside < g.window.iter().product::<usize>()
}

/// Output positions of one image.
fn image_rows(g: &VolGeom) -> usize {
    g.output.iter().product()
}

fn pool_typed<T: Widen>(kind: Pool3dKind, x: &[T], y: &mut [T], g: &VolGeom) {
    let c = g.cin;
    let mut acc = vec![];
    let run = |(r, out): (usize, &mut [T]), acc: &mut Vec<T::W>| {
        let (n, o) = g.position(r);
        let mut count = 0usize;
        match kind {
            Pool3dKind::Max => {
                acc.clear();
                acc.resize(c, T::W::MAX_IDENTITY);
                let padded = for_each_voxel(g, n, o, |at| {
                    for (a, &v) in acc.iter_mut().zip(&x[at..at + c]) {
                        let v = v.widen();
                        if v > *a {
                            *a = v;
                        }
                    }
                });
                if padded {
                    // Eigen pads with the lowest finite value.
                    for a in acc.iter_mut() {
                        if T::W::LOWEST > *a {
                            *a = T::W::LOWEST;
                        }
                    }
                }
            }
            Pool3dKind::Avg => {
                acc.clear();
                acc.resize(c, T::W::ZERO);
                for_each_voxel(g, n, o, |at| {
                    count += 1;
                    for (a, &v) in acc.iter_mut().zip(&x[at..at + c]) {
                        *a = *a + v.widen();
                    }
                });
                let k = T::W::from_usize(count);
                for a in acc.iter_mut() {
                    *a = *a / k;
                }
            }
        }
        for (o, &a) in out.iter_mut().zip(acc.iter()) {
            *o = T::narrow(a);
        }
    };
    if y.len() < super::PAR_MIN_ELEMENTS {
        y.chunks_mut(c)
            .enumerate()
            .for_each(|row| run(row, &mut acc));
    } else {
        y.par_chunks_mut(c)
            .enumerate()
            .for_each_init(Vec::new, |acc, row| run(row, acc));
    }
}

fn check(t: &[usize], want: &[usize], what: &str) -> Result<()> {
    if t == want {
        return Ok(());
    }
    Err(Error::Internal(format!(
        "3-D pooling {what} shape {} does not match the geometry's {}",
        fmt_shape(t),
        fmt_shape(want)
    )))
}

/// MaxPool3D or AvgPool3D of `input` into `out` (`g.cout == g.cin`).
pub fn pool3d(
    kind: Pool3dKind,
    input: &TensorView,
    out: &mut TensorMut,
    g: &VolGeom,
) -> Result<()> {
    check(&input.shape, &g.input_shape(), "input")?;
    check(&out.shape, &g.output_shape(), "output")?;
    if out.num_elements() == 0 {
        return Ok(());
    }
    fn typed<T: Widen>(
        kind: Pool3dKind,
        x: &TensorView,
        y: &mut TensorMut,
        g: &VolGeom,
    ) -> Result<()> {
        pool_typed::<T>(kind, x.data()?, y.data_mut()?, g);
        Ok(())
    }
    float_dispatch!(out.dtype, "3-D pooling", typed(kind, input, out, g))
}

/// Scatters the gradient of every output position of image `n` into its
/// input image `dx` (windows of one image overlap: one image per task).
fn grad_image<T: Widen>(
    n: usize,
    dx: &mut [T::W],
    dy: &[T],
    g: &VolGeom,
    mut window_grad: impl FnMut(usize, usize, &[T], &mut [T::W]),
) {
    let (c, rows) = (g.cin, image_rows(g));
    let image = dx.len();
    for r in n * rows..(n + 1) * rows {
        let (_, o) = g.position(r);
        let dyr = &dy[r * c..(r + 1) * c];
        for_each_voxel(g, n, o, |at| {
            let at = at - n * image;
            window_grad(r, at, dyr, &mut dx[at..at + c]);
        });
    }
}

fn max_grad_typed<T: Widen>(x: &[T], y: &[T], dy: &[T], dx: &mut [T], g: &VolGeom) {
    let c = g.cin;
    let image = g.input.iter().product::<usize>() * c;
    dx.par_chunks_mut(image).enumerate().for_each(|(n, out)| {
        let mut acc = vec![T::W::ZERO; image];
        grad_image::<T>(n, &mut acc, dy, g, |r, at, dyr, d| {
            let (xs, ys) = (&x[n * image + at..], &y[r * c..(r + 1) * c]);
            for i in 0..c {
                // TensorFlow's CPU rule: every near-tie takes the gradient.
                let diff = xs[i].widen() - ys[i].widen();
                if diff < T::W::from_f64(1e-5) && diff > T::W::from_f64(-1e-5) {
                    d[i] = d[i] + dyr[i].widen();
                }
            }
        });
        for (o, a) in out.iter_mut().zip(acc) {
            *o = T::narrow(a);
        }
    });
}

fn avg_grad_typed<T: Widen>(dy: &[T], dx: &mut [T], g: &VolGeom) {
    let image = g.input.iter().product::<usize>() * g.cin;
    dx.par_chunks_mut(image).enumerate().for_each(|(n, out)| {
        let mut acc = vec![T::W::ZERO; image];
        let mut count = (usize::MAX, 0usize);
        grad_image::<T>(n, &mut acc, dy, g, |r, _, dyr, d| {
            if count.0 != r {
                let (_, o) = g.position(r);
                let w = window(g, o);
                count = (r, w.iter().map(|w| w.len()).product());
            }
            let k = T::W::from_usize(count.1);
            for (d, &v) in d.iter_mut().zip(dyr) {
                *d = *d + v.widen() / k;
            }
        });
        for (o, a) in out.iter_mut().zip(acc) {
            *o = T::narrow(a);
        }
    });
}

/// MaxPool3DGrad: `dx` (the input's shape) from the input, the pool's
/// output and its gradient `dy`.
pub fn max_pool3d_grad(
    input: &TensorView,
    output: &TensorView,
    dy: &TensorView,
    dx: &mut TensorMut,
    g: &VolGeom,
) -> Result<()> {
    check(&input.shape, &g.input_shape(), "input")?;
    check(&output.shape, &g.output_shape(), "orig_output")?;
    check(&dy.shape, &g.output_shape(), "grad")?;
    check(&dx.shape, &g.input_shape(), "gradient")?;
    dx.bytes_mut().fill(0);
    if dy.num_elements() == 0 || dx.num_elements() == 0 {
        return Ok(());
    }
    fn typed<T: Widen>(
        x: &TensorView,
        y: &TensorView,
        dy: &TensorView,
        dx: &mut TensorMut,
        g: &VolGeom,
    ) -> Result<()> {
        max_grad_typed::<T>(x.data()?, y.data()?, dy.data()?, dx.data_mut()?, g);
        Ok(())
    }
    float_dispatch!(dx.dtype, "MaxPool3DGrad", typed(input, output, dy, dx, g))
}

/// AvgPool3DGrad: `dx` (`g`'s input shape) from `dy` (`g`'s output shape).
pub fn avg_pool3d_grad(dy: &TensorView, dx: &mut TensorMut, g: &VolGeom) -> Result<()> {
    check(&dy.shape, &g.output_shape(), "out_backprop")?;
    check(&dx.shape, &g.input_shape(), "gradient")?;
    dx.bytes_mut().fill(0);
    if dy.num_elements() == 0 || dx.num_elements() == 0 {
        return Ok(());
    }
    fn typed<T: Widen>(dy: &TensorView, dx: &mut TensorMut, g: &VolGeom) -> Result<()> {
        avg_grad_typed::<T>(dy.data()?, dx.data_mut()?, g);
        Ok(())
    }
    float_dispatch!(dx.dtype, "AvgPool3DGrad", typed(dy, dx, g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::conv::Padding;

    fn geom(same: bool) -> VolGeom {
        let padding = if same { Padding::Same } else { Padding::Valid };
        VolGeom::new(
            &[2, 3, 4, 5, 2],
            [2, 2, 3],
            2,
            &[1, 2, 1, 2, 1],
            &[],
            padding,
        )
        .unwrap()
    }

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect()
    }

    /// The average gradient is the adjoint of the average pool.
    #[test]
    fn avg_grad_is_the_adjoint() {
        for same in [false, true] {
            let g = geom(same);
            let x = values(g.input_shape().iter().product());
            let dy: Vec<f32> = values(g.output_shape().iter().product())
                .iter()
                .map(|v| v * 0.5)
                .collect();
            let mut y = vec![0.0f32; dy.len()];
            pool_typed(Pool3dKind::Avg, &x, &mut y, &g);
            let mut dx = vec![0.0f32; x.len()];
            avg_grad_typed(&dy, &mut dx, &g);
            let a: f64 = y.iter().zip(&dy).map(|(a, b)| (a * b) as f64).sum();
            let b: f64 = dx.iter().zip(&x).map(|(a, b)| (a * b) as f64).sum();
            assert!((a - b).abs() < 1e-3 * a.abs().max(1.0), "{a} vs {b}");
        }
    }

    /// Max pool and its gradient on distinct values: the gradient of each
    /// output lands on its arg-max.
    #[test]
    fn max_grad_lands_on_the_maximum() {
        let g = geom(true);
        let x = values(g.input_shape().iter().product());
        let mut y = vec![0.0f32; g.output_shape().iter().product()];
        pool_typed(Pool3dKind::Max, &x, &mut y, &g);
        let dy = vec![1.0f32; y.len()];
        let mut dx = vec![0.0f32; x.len()];
        max_grad_typed(&x, &y, &dy, &mut dx, &g);
        assert_eq!(dx.iter().sum::<f32>(), y.len() as f32);
        for (i, &d) in dx.iter().enumerate() {
            if d > 0.0 {
                assert!(y.contains(&x[i]));
            }
        }
    }
}

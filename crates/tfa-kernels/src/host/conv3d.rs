//! 3-D convolution (NDHWC, filter DHWIO) and its input and filter gradients,
//! as im2col + GEMM over bands of output rows: the `[n*od*oh*ow, cout]`
//! output is `patches[rows, kd*kh*kw*cin] @ filter[kd*kh*kw*cin, cout]`.
//! Half types compute in float32, as TensorFlow's CPU kernels do.

use super::conv::gemm_rows;
use super::conv::DataFormat;
use super::conv_grad::{float_dispatch, load_nhwc, with_out_nhwc};
use super::gemm_threads;
use super::numeric::{Compute, Widen};
use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};

pub(crate) use crate::geometry::volume::VolGeom;

/// What the host kernels walk: patches, taps and voxels.
impl VolGeom {
    /// Elements of one patch: the window over every input channel.
    fn patch(&self) -> usize {
        self.window.iter().product::<usize>() * self.cin
    }

    /// The input coordinate of output `o` and window tap `k` in dimension
    /// `i`, or `None` in the padding.
    #[inline]
    pub(crate) fn tap(&self, i: usize, o: usize, k: usize) -> Option<usize> {
        let p = (o * self.strides[i] + k * self.dilations[i]) as isize - self.pad[i] as isize;
        (p >= 0 && (p as usize) < self.input[i]).then_some(p as usize)
    }

    /// `(n, [od, oh, ow])` of output row `r`.
    #[inline]
    pub(crate) fn position(&self, r: usize) -> (usize, [usize; 3]) {
        let [od, oh, ow] = self.output;
        let (x, rest) = (r % ow, r / ow);
        let (y, rest) = (rest % oh, rest / oh);
        (rest / od, [rest % od, y, x])
    }

    /// Offset of input voxel `(n, [d, h, w])`'s first channel.
    #[inline]
    pub(crate) fn voxel(&self, n: usize, p: [usize; 3]) -> usize {
        let [_, h, w] = self.input;
        (((n * self.input[0] + p[0]) * h + p[1]) * w + p[2]) * self.cin
    }

    /// Calls `f(tap, voxel offset)` for every window tap of output row `r`
    /// that lies inside the input (taps numbered (kd, kh, kw) row-major).
    #[inline]
    pub(crate) fn for_each_tap(&self, r: usize, mut f: impl FnMut(usize, usize)) {
        let (n, o) = self.position(r);
        let [kd, kh, kw] = self.window;
        for a in 0..kd {
            let Some(d) = self.tap(0, o[0], a) else {
                continue;
            };
            for b in 0..kh {
                let Some(h) = self.tap(1, o[1], b) else {
                    continue;
                };
                for c in 0..kw {
                    if let Some(w) = self.tap(2, o[2], c) {
                        f((a * kh + b) * kw + c, self.voxel(n, [d, h, w]));
                    }
                }
            }
        }
    }
}

/// Bytes of patches per band: bands stay cache-sized whatever the filter.
const BAND_BYTES: usize = 4 << 20;

/// Output rows per band for patches of `patch` elements of `W`.
fn band_rows<W>(g: &VolGeom) -> usize {
    let elem = std::mem::size_of::<W>();
    (BAND_BYTES / (g.patch().max(1) * elem))
        .max(64)
        .min(g.rows().max(1))
}

/// Patches of output rows `[m0, m0 + rows)` into `buf` (`[rows, patch]`),
/// zeros where a window hangs over the padding.
fn im2col<W: Compute>(x: &[W], g: &VolGeom, m0: usize, buf: &mut [W]) {
    let (cin, patch) = (g.cin, g.patch());
    buf.par_chunks_mut(patch).enumerate().for_each(|(i, row)| {
        row.fill(W::ZERO);
        g.for_each_tap(m0 + i, |t, at| {
            row[t * cin..(t + 1) * cin].copy_from_slice(&x[at..at + cin]);
        });
    });
}

fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

fn conv3d_nhwc<W: Compute>(x: &[W], f: &[W], y: &mut [W], g: &VolGeom) {
    let (patch, cout) = (g.patch(), g.cout);
    let step = band_rows::<W>(g);
    let mut patches = vec![W::ZERO; step * patch];
    for (s, ys) in y.chunks_mut(step * cout).enumerate() {
        let rows = ys.len() / cout;
        im2col(x, g, s * step, &mut patches[..rows * patch]);
        // SAFETY: patches is [rows, patch], f is [patch, cout] and ys is
        // [rows, cout], all row-major and live; ys aliases neither.
        unsafe {
            gemm_rows(
                rows,
                cout,
                patch,
                (ys.as_mut_ptr(), cout),
                (patches.as_ptr(), patch),
                (f.as_ptr(), cout),
                threads(),
            )
        }
    }
}

fn filter_grad<W: Compute>(x: &[W], dy: &[W], df: &mut [W], g: &VolGeom) {
    let (patch, cout) = (g.patch(), g.cout);
    let step = band_rows::<W>(g);
    let mut patches = vec![W::ZERO; step * patch];
    df.fill(W::ZERO);
    for (s, dys) in dy.chunks(step * cout).enumerate() {
        let rows = dys.len() / cout;
        im2col(x, g, s * step, &mut patches[..rows * patch]);
        // SAFETY: df[patch, cout] += patches^T @ dys: patches is [rows,
        // patch] row-major (so its transpose has row stride 1, column
        // stride patch), dys is [rows, cout]; df is a separate buffer.
        unsafe {
            gemm_threads::gemm(
                patch,
                cout,
                rows,
                (df.as_mut_ptr(), cout as isize),
                true,
                (patches.as_ptr(), (1, patch as isize)),
                (dys.as_ptr(), (cout as isize, 1)),
                W::ONE,
                W::ONE,
                threads(),
            )
        }
    }
}

/// The input gradient of a unit-stride convolution as a forward one: `dx`
/// correlates `dy` with the filter flipped in space and transposed in
/// channels, padded by `(k - 1) * dilation - pad` before; the forward's
/// parallel im2col + GEMM then does the work a serial col2im would.
fn input_grad_as_forward<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &VolGeom) {
    let taps: usize = g.window.iter().product();
    let (cin, cout) = (g.cin, g.cout);
    let mut flipped = vec![W::ZERO; f.len()];
    for t in 0..taps {
        let src = &f[t * cin * cout..(t + 1) * cin * cout];
        let dst = &mut flipped[(taps - 1 - t) * cin * cout..][..cin * cout];
        for i in 0..cin {
            for o in 0..cout {
                dst[o * cin + i] = src[i * cout + o];
            }
        }
    }
    let t = VolGeom {
        n: g.n,
        input: g.output,
        cin: cout,
        window: g.window,
        cout: cin,
        strides: [1; 3],
        dilations: g.dilations,
        output: g.input,
        pad: std::array::from_fn(|i| (g.window[i] - 1) * g.dilations[i] - g.pad[i]),
    };
    conv3d_nhwc(dy, &flipped, dx, &t);
}

fn input_grad<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &VolGeom) {
    // Unit strides and a padding inside the window (always so for SAME and
    // VALID): a forward convolution.
    if g.strides == [1; 3] && (0..3).all(|i| g.pad[i] <= (g.window[i] - 1) * g.dilations[i]) {
        return input_grad_as_forward(dy, f, dx, g);
    }
    col2im_input_grad(dy, f, dx, g)
}

/// The input gradient of any convolution: `dy · Wᵀ` per band of output rows,
/// scattered back (col2im), images in parallel.
fn col2im_input_grad<W: Compute>(dy: &[W], f: &[W], dx: &mut [W], g: &VolGeom) {
    let (patch, cout, cin) = (g.patch(), g.cout, g.cin);
    let step = band_rows::<W>(g);
    let mut cols = vec![W::ZERO; step * patch];
    dx.fill(W::ZERO);
    let image = dx.len() / g.n.max(1);
    let per_image = g.rows() / g.n.max(1);
    for (s, dys) in dy.chunks(step * cout).enumerate() {
        let (m0, rows) = (s * step, dys.len() / cout);
        // SAFETY: cols[rows, patch] = dys[rows, cout] @ f^T, where f is
        // [patch, cout] row-major (its transpose: row stride 1, column
        // stride cout); cols is a separate buffer.
        unsafe {
            gemm_threads::gemm(
                rows,
                patch,
                cout,
                (cols.as_mut_ptr(), patch as isize),
                false,
                (dys.as_ptr(), (cout as isize, 1)),
                (f.as_ptr(), (1, cout as isize)),
                W::ZERO,
                W::ONE,
                threads(),
            )
        }
        // col2im: windows of one image overlap, different images never, so
        // images scatter in parallel.
        let first = m0 / per_image;
        let last = (m0 + rows - 1) / per_image;
        dx[first * image..(last + 1) * image]
            .par_chunks_mut(image)
            .enumerate()
            .for_each(|(i, img)| {
                let n = first + i;
                let lo = (n * per_image).max(m0);
                let hi = ((n + 1) * per_image).min(m0 + rows);
                for r in lo..hi {
                    let col = &cols[(r - m0) * patch..(r - m0 + 1) * patch];
                    g.for_each_tap(r, |t, at| {
                        let at = at - n * image;
                        for (d, &v) in img[at..at + cin].iter_mut().zip(&col[t * cin..]) {
                            *d = *d + v;
                        }
                    });
                }
            });
    }
}

fn check(t: &[usize], want: &[usize], what: &str) -> Result<()> {
    if t == want {
        return Ok(());
    }
    Err(Error::Internal(format!(
        "3-D convolution {what} shape {} does not match the geometry's {}",
        fmt_shape(t),
        fmt_shape(want)
    )))
}

/// Conv3D of an NDHWC `input` by a DHWIO `filter` into `out`.
pub fn conv3d(
    input: &TensorView,
    filter: &TensorView,
    out: &mut TensorMut,
    g: &VolGeom,
) -> Result<()> {
    check(&input.shape, &g.input_shape(), "input")?;
    check(&filter.shape, &g.filter_shape(), "filter")?;
    check(&out.shape, &g.output_shape(), "output")?;
    if out.num_elements() == 0 {
        return Ok(());
    }
    fn typed<T: Widen>(
        x: &TensorView,
        f: &TensorView,
        y: &mut TensorMut,
        g: &VolGeom,
    ) -> Result<()> {
        let x = load_nhwc::<T>(x.data()?, 1, x.num_elements(), 1, DataFormat::Nhwc);
        let f = load_nhwc::<T>(f.data()?, 1, f.num_elements(), 1, DataFormat::Nhwc);
        let out = y.data_mut::<T>()?;
        let len = out.len();
        with_out_nhwc::<T>(out, 1, len, 1, DataFormat::Nhwc, |y| {
            conv3d_nhwc(&x, &f, y, g)
        });
        Ok(())
    }
    float_dispatch!(out.dtype, "Conv3D", typed(input, filter, out, g))
}

/// Which gradient of a 3-D convolution.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Conv3dGrad {
    /// `dx` from the filter and `dy` (Conv3DBackpropInputV2).
    Input,
    /// `df` from the input and `dy` (Conv3DBackpropFilterV2).
    Filter,
}

/// A gradient of Conv3D: `operand` is the filter (`Input`) or the input
/// (`Filter`), `out` the gradient with respect to the other.
pub fn conv3d_backprop(
    which: Conv3dGrad,
    operand: &TensorView,
    dy: &TensorView,
    out: &mut TensorMut,
    g: &VolGeom,
) -> Result<()> {
    let (operand_shape, out_shape) = match which {
        Conv3dGrad::Input => (g.filter_shape(), g.input_shape()),
        Conv3dGrad::Filter => (g.input_shape(), g.filter_shape()),
    };
    check(&operand.shape, &operand_shape, "operand")?;
    check(&dy.shape, &g.output_shape(), "out_backprop")?;
    check(&out.shape, &out_shape, "gradient")?;
    if out.num_elements() == 0 || operand.num_elements() == 0 || dy.num_elements() == 0 {
        // Nothing flows in: zeros (all-zero bits are 0.0 in every float type).
        out.bytes_mut().fill(0);
        return Ok(());
    }
    fn typed<T: Widen>(
        which: Conv3dGrad,
        a: &TensorView,
        dy: &TensorView,
        out: &mut TensorMut,
        g: &VolGeom,
    ) -> Result<()> {
        let a = load_nhwc::<T>(a.data()?, 1, a.num_elements(), 1, DataFormat::Nhwc);
        let dy = load_nhwc::<T>(dy.data()?, 1, dy.num_elements(), 1, DataFormat::Nhwc);
        let o = out.data_mut::<T>()?;
        let len = o.len();
        with_out_nhwc::<T>(o, 1, len, 1, DataFormat::Nhwc, |o| match which {
            Conv3dGrad::Input => input_grad(&dy, &a, o, g),
            Conv3dGrad::Filter => filter_grad(&a, &dy, o, g),
        });
        Ok(())
    }
    float_dispatch!(
        out.dtype,
        "Conv3D backprop",
        typed(which, operand, dy, out, g)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::window::Padding;

    /// The definition, term by term, in float64.
    fn naive(x: &[f64], f: &[f64], g: &VolGeom) -> Vec<f64> {
        let mut y = vec![0.0; g.rows() * g.cout];
        for r in 0..g.rows() {
            g.for_each_tap(r, |t, at| {
                for c in 0..g.cin {
                    for o in 0..g.cout {
                        y[r * g.cout + o] += x[at + c] * f[(t * g.cin + c) * g.cout + o];
                    }
                }
            });
        }
        y
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|i| (((i as u64 * 2654435761 + seed) % 97) as f64 - 48.0) / 17.0)
            .collect()
    }

    fn geom(same: bool, unit_strides: bool) -> VolGeom {
        let padding = if same { Padding::Same } else { Padding::Valid };
        let strides: &[i64] = if unit_strides {
            &[1; 5]
        } else {
            &[1, 2, 1, 2, 1]
        };
        VolGeom::new(
            &[2, 5, 4, 6, 3],
            [2, 3, 2],
            4,
            strides,
            &[1, 1, 2, 1, 1],
            padding,
        )
        .unwrap()
    }

    /// Both input-gradient paths (a forward convolution for unit strides,
    /// col2im for any) give the same gradient.
    #[test]
    fn input_grad_paths_agree() {
        for same in [false, true] {
            let g = geom(same, true);
            let f = values(g.filter_shape().iter().product(), 6);
            let dy = values(g.rows() * g.cout, 7);
            let n: usize = g.input_shape().iter().product();
            let (mut fast, mut slow) = (vec![0.0; n], vec![0.0; n]);
            input_grad(&dy, &f, &mut fast, &g);
            col2im_input_grad(&dy, &f, &mut slow, &g);
            for (a, b) in fast.iter().zip(&slow) {
                assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for (same, unit) in [(false, false), (true, false), (false, true), (true, true)] {
            let g = geom(same, unit);
            let x = values(g.input_shape().iter().product(), 1);
            let f = values(g.filter_shape().iter().product(), 2);
            let mut y = vec![0.0; g.rows() * g.cout];
            conv3d_nhwc(&x, &f, &mut y, &g);
            for (a, b) in y.iter().zip(naive(&x, &f, &g)) {
                assert!((a - b).abs() < 1e-9, "{a} vs {b}");
            }
        }
    }

    /// <dy, conv(x, f)> is linear in x and in f: the gradients are the
    /// adjoints, checked through the inner product identity.
    #[test]
    fn gradients_are_adjoints() {
        for (same, unit) in [(false, false), (true, false), (false, true), (true, true)] {
            let g = geom(same, unit);
            let x = values(g.input_shape().iter().product(), 3);
            let f = values(g.filter_shape().iter().product(), 4);
            let dy = values(g.rows() * g.cout, 5);
            let y = naive(&x, &f, &g);
            let want: f64 = y.iter().zip(&dy).map(|(a, b)| a * b).sum();
            let mut dx = vec![0.0; x.len()];
            input_grad(&dy, &f, &mut dx, &g);
            let mut df = vec![0.0; f.len()];
            filter_grad(&x, &dy, &mut df, &g);
            let via_x: f64 = dx.iter().zip(&x).map(|(a, b)| a * b).sum();
            let via_f: f64 = df.iter().zip(&f).map(|(a, b)| a * b).sum();
            assert!(
                (via_x - want).abs() < 1e-6 * want.abs().max(1.0),
                "{via_x} vs {want}"
            );
            assert!(
                (via_f - want).abs() < 1e-6 * want.abs().max(1.0),
                "{via_f} vs {want}"
            );
        }
    }
}

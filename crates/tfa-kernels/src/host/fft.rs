//! FFTs over the innermost dimension: complex (`FFT`, `IFFT`) and real
//! (`RFFT`, `IRFFT`: `tf.signal.rfft`, `irfft`, `stft`, Keras
//! `MelSpectrogram`/`STFTSpectrogram`). rustfft does
//! the transforms, in float64 and rounded once to float32 (TensorFlow's
//! float32 DUCC transforms round along the way, so results agree to float32
//! accuracy relative to the signal's magnitude).

use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::FftPlanner;
use tfa_core::{c64, Error, Result, TensorMut, TensorView};

/// Rows of a tensor whose innermost dimension is `inner`.
fn rows(t: &[usize]) -> (usize, usize) {
    let inner = t.last().copied().unwrap_or(1);
    let total: usize = t.iter().product();
    (total.checked_div(inner).unwrap_or(0), inner)
}

/// RFFT of length `n`: each row's first `n` values (the caller checked that
/// rows have at least `n`) into `n / 2 + 1` complex bins.
pub fn rfft(x: &TensorView, n: usize, out: &mut TensorMut) -> Result<()> {
    let (count, inner) = rows(&x.shape);
    let bins = out.shape.last().copied().unwrap_or(0);
    let src = x.data::<f32>()?;
    let dst = out.data_mut::<c64>()?;
    if dst.is_empty() || n == 0 {
        return Ok(());
    }
    if bins != n / 2 + 1 || dst.len() != count * bins {
        return Err(Error::Internal("RFFT output shape does not match".into()));
    }
    let fft = FftPlanner::<f64>::new().plan_fft_forward(n);
    dst.par_chunks_mut(bins).enumerate().for_each(|(r, o)| {
        let mut buf: Vec<Complex64> = src[r * inner..r * inner + n]
            .iter()
            .map(|&v| Complex64::new(f64::from(v), 0.0))
            .collect();
        fft.process(&mut buf);
        for (d, v) in o.iter_mut().zip(&buf) {
            *d = c64::new(v.re as f32, v.im as f32);
        }
    });
    Ok(())
}

/// IRFFT of length `n`: each row's first `n / 2 + 1` bins (the caller
/// checked that rows have that many) as the half spectrum of a real signal
/// (the imaginary parts of the DC and, for even `n`, Nyquist bins ignored),
/// inverted and divided by `n`.
pub fn irfft(x: &TensorView, n: usize, out: &mut TensorMut) -> Result<()> {
    let (count, inner) = rows(&x.shape);
    let src = x.data::<c64>()?;
    let dst = out.data_mut::<f32>()?;
    if dst.is_empty() || n == 0 {
        return Ok(());
    }
    if dst.len() != count * n {
        return Err(Error::Internal("IRFFT output shape does not match".into()));
    }
    let half = n / 2 + 1;
    let fft = FftPlanner::<f64>::new().plan_fft_inverse(n);
    dst.par_chunks_mut(n).enumerate().for_each(|(r, o)| {
        let bins = &src[r * inner..r * inner + half];
        let mut buf = vec![Complex64::new(0.0, 0.0); n];
        for (k, b) in bins.iter().enumerate() {
            let v = Complex64::new(f64::from(b.re), f64::from(b.im));
            buf[k] = v;
            if k > 0 && n - k != k {
                buf[n - k] = v.conj();
            }
        }
        buf[0].im = 0.0;
        if n.is_multiple_of(2) {
            buf[n / 2].im = 0.0;
        }
        fft.process(&mut buf);
        let scale = 1.0 / n as f64;
        for (d, v) in o.iter_mut().zip(&buf) {
            *d = (v.re * scale) as f32;
        }
    });
    Ok(())
}

/// FFT (`inverse == false`) or IFFT (divided by the length) of every row of
/// a complex64 tensor, into `out` of the same shape.
pub fn fft(x: &TensorView, inverse: bool, out: &mut TensorMut) -> Result<()> {
    let (_, n) = rows(&x.shape);
    let src = x.data::<c64>()?;
    let dst = out.data_mut::<c64>()?;
    if dst.is_empty() || n == 0 {
        return Ok(());
    }
    if dst.len() != src.len() {
        return Err(Error::Internal("FFT output shape does not match".into()));
    }
    let mut planner = FftPlanner::<f64>::new();
    let plan = if inverse {
        planner.plan_fft_inverse(n)
    } else {
        planner.plan_fft_forward(n)
    };
    let scale = if inverse { 1.0 / n as f64 } else { 1.0 };
    dst.par_chunks_mut(n)
        .zip(src.par_chunks(n))
        .for_each(|(o, i)| {
            let mut buf: Vec<Complex64> = i
                .iter()
                .map(|v| Complex64::new(f64::from(v.re), f64::from(v.im)))
                .collect();
            plan.process(&mut buf);
            for (d, v) in o.iter_mut().zip(&buf) {
                *d = c64::new((v.re * scale) as f32, (v.im * scale) as f32);
            }
        });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfa_core::DType;

    /// irfft(rfft(x)) == x, and the DC bin is the sum.
    #[test]
    fn round_trip() {
        for n in [1usize, 2, 5, 8, 13] {
            let x: Vec<f32> = (0..2 * n)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
                .collect();
            let xv = TensorView::from_slice(vec![2, n], &x);
            let mut spec = vec![c64::new(0.0, 0.0); 2 * (n / 2 + 1)];
            rfft(
                &xv,
                n,
                &mut TensorMut::from_slice(vec![2, n / 2 + 1], &mut spec),
            )
            .unwrap();
            let sum: f32 = x[..n].iter().sum();
            assert!((spec[0].re - sum).abs() < 1e-4, "{n}");
            let mut back = vec![0f32; 2 * n];
            let sv = TensorView::from_slice(vec![2, n / 2 + 1], &spec);
            irfft(&sv, n, &mut TensorMut::from_slice(vec![2, n], &mut back)).unwrap();
            for (a, b) in back.iter().zip(&x) {
                assert!((a - b).abs() < 1e-5, "{n}: {a} vs {b}");
            }
            assert_eq!(sv.dtype, DType::C64);
        }
    }

    /// ifft(fft(x)) == x.
    #[test]
    fn complex_round_trip() {
        let x: Vec<c64> = (0..12)
            .map(|i| c64::new(i as f32 * 0.5 - 2.0, (i * 5 % 7) as f32))
            .collect();
        let mut y = vec![c64::new(0.0, 0.0); 12];
        fft(
            &TensorView::from_slice(vec![2, 6], &x),
            false,
            &mut TensorMut::from_slice(vec![2, 6], &mut y),
        )
        .unwrap();
        let mut z = vec![c64::new(0.0, 0.0); 12];
        fft(
            &TensorView::from_slice(vec![2, 6], &y),
            true,
            &mut TensorMut::from_slice(vec![2, 6], &mut z),
        )
        .unwrap();
        for (a, b) in z.iter().zip(&x) {
            assert!((a - b).norm() < 1e-5, "{a} vs {b}");
        }
    }
}

//! The numeric family of the widening kernels: an element type (`Widen`:
//! float32, float64, float16, bfloat16) and the type it computes in
//! (`Compute`: float32 for the 32-bit and 16-bit types, float64 for float64),
//! as TensorFlow's CPU kernels compute half types in float32. Convolutions,
//! pooling and their gradients, 3-D windows and the softmax losses share it.

use half::{bf16, f16};
use tfa_core::{Element, Result};

use super::conv::{ConvGeom, RowsEpilogue};

/// Element types the widening kernels take, with the type they compute in.
pub trait Widen: Element {
    type W: Compute;
    fn widen(self) -> Self::W;
    fn narrow(w: Self::W) -> Self;
}

/// The compute types (float32, float64).
pub trait Compute:
    Copy
    + Send
    + Sync
    + Default
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + 'static
{
    /// The convolution by Winograd's method, where the type has one and `g`
    /// suits it (float32: see `winograd`); `None` otherwise.
    fn winograd(
        _x: &[Self],
        _f: &[Self],
        _y: &mut [Self],
        _g: &ConvGeom,
        _epilogue: Option<&RowsEpilogue>,
    ) -> Option<Result<()>> {
        None
    }
    const ZERO: Self;
    const ONE: Self;
    const LOWEST: Self;
    fn from_usize(v: usize) -> Self;
    fn from_f64(v: f64) -> Self;
    /// `self * b + c`, fused (only call where the `fma` feature is enabled:
    /// elsewhere it is a slow library call).
    fn fused(self, b: Self, c: Self) -> Self;
    const NEG_INF: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
}

impl Compute for f32 {
    const ZERO: f32 = 0.0;
    const NEG_INF: f32 = f32::NEG_INFINITY;
    #[inline]
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    #[inline]
    fn ln(self) -> f32 {
        f32::ln(self)
    }
    const ONE: f32 = 1.0;
    const LOWEST: f32 = f32::MIN;
    fn from_usize(v: usize) -> f32 {
        v as f32
    }
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    #[inline(always)]
    fn fused(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
    fn winograd(
        x: &[f32],
        f: &[f32],
        y: &mut [f32],
        g: &ConvGeom,
        epilogue: Option<&RowsEpilogue>,
    ) -> Option<Result<()>> {
        crate::host::winograd::eligible(g)
            .then(|| crate::host::winograd::conv2d(x, f, y, g, epilogue))
    }
}

impl Compute for f64 {
    const ZERO: f64 = 0.0;
    const NEG_INF: f64 = f64::NEG_INFINITY;
    #[inline]
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    #[inline]
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    const ONE: f64 = 1.0;
    const LOWEST: f64 = f64::MIN;
    fn from_usize(v: usize) -> f64 {
        v as f64
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
    #[inline(always)]
    fn fused(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
}

impl Widen for f32 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
    #[inline(always)]
    fn narrow(w: f32) -> f32 {
        w
    }
}

impl Widen for f64 {
    type W = f64;
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
    #[inline(always)]
    fn narrow(w: f64) -> f64 {
        w
    }
}

impl Widen for f16 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(w: f32) -> f16 {
        f16::from_f32(w)
    }
}

impl Widen for bf16 {
    type W = f32;
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
    #[inline(always)]
    fn narrow(w: f32) -> bf16 {
        bf16::from_f32(w)
    }
}

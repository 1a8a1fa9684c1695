//! Data types, numbered as TensorFlow's `TF_DataType` / `DataType` proto.

use half::{bf16, f16};

/// A tensor element type. Discriminants are TensorFlow's `TF_DataType` values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum DType {
    F32 = 1,
    F64 = 2,
    I32 = 3,
    U8 = 4,
    I16 = 5,
    I8 = 6,
    C64 = 8,
    I64 = 9,
    Bool = 10,
    BF16 = 14,
    U16 = 17,
    F16 = 19,
    U32 = 22,
    U64 = 23,
}

impl DType {
    /// Every dtype tf_adapter can hold in device memory.
    pub const ALL: &'static [DType] = &[
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::Bool,
    ];

    /// Maps a TensorFlow `TF_DataType` number; `None` for types we do not handle
    /// (strings, complex, quantized, resources, variants).
    /// complex64: not in `ALL` (the real types); only the ops that compute
    /// on complex numbers (and the byte movers they need) list it.
    pub const COMPLEX: &'static [DType] = &[DType::C64];

    pub fn from_tf(v: u32) -> Option<DType> {
        DType::ALL
            .iter()
            .chain(DType::COMPLEX)
            .copied()
            .find(|d| *d as u32 == v)
    }

    pub fn as_tf(self) -> u32 {
        self as u32
    }

    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 | DType::U64 | DType::C64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F16 | DType::BF16 | DType::I16 | DType::U16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// The Python-side name (`tf.float32.name`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::U8 => "uint8",
            DType::U16 => "uint16",
            DType::U32 => "uint32",
            DType::U64 => "uint64",
            DType::Bool => "bool",
            DType::C64 => "complex64",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    pub fn is_int(self) -> bool {
        matches!(
            self,
            DType::I8
                | DType::I16
                | DType::I32
                | DType::I64
                | DType::U8
                | DType::U16
                | DType::U32
                | DType::U64
        )
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that is the element type of some [`DType`].
///
/// # Safety
/// Implementors must be plain-old-data of exactly `DTYPE.size()` bytes for which
/// every bit pattern TensorFlow can produce is valid (bool: TensorFlow only
/// writes 0 or 1).
pub unsafe trait Element: Copy + Send + Sync + Default + PartialEq + 'static {
    const DTYPE: DType;
}

macro_rules! element {
    ($($t:ty => $d:ident),* $(,)?) => {
        $(
            // SAFETY: every type listed below is a primitive (or half's `f16`/`bf16`,
            // `repr(transparent)` over `u16`) whose size is `DType::$d.size()`;
            // all bit patterns are valid except for `bool`, where TensorFlow only
            // ever writes 0 or 1.
            unsafe impl Element for $t { const DTYPE: DType = DType::$d; }
        )*
    };
}

element!(
    f32 => F32, f64 => F64, f16 => F16, bf16 => BF16,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64, bool => Bool,
);

/// complex64: two float32, real part first (`repr(C)`), as TensorFlow lays
/// it out.
#[allow(non_camel_case_types)]
pub type c64 = num_complex::Complex<f32>;

// SAFETY: `Complex<f32>` is `repr(C)` over two f32 (8 bytes, the size of
// `DType::C64`); every bit pattern is a valid value.
unsafe impl Element for c64 {
    const DTYPE: DType = DType::C64;
}

/// Calls `$body` with the type alias `$T` bound to the Rust element type of
/// `$dtype`. Arms can be restricted: `dispatch!(dt, T => body; [F32, F64])`.
#[macro_export]
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr) => {
        $crate::dispatch!($dtype, $T => $body;
            [F32, F64, F16, BF16, I8, I16, I32, I64, U8, U16, U32, U64, Bool])
    };
    ($dtype:expr, $T:ident => $body:expr; [$($d:ident),* $(,)?]) => {{
        #[allow(unreachable_patterns)]
        match $dtype {
            $($crate::DType::$d => {
                type $T = $crate::dispatch!(@ty $d);
                $body
            })*
            other => Err($crate::Error::Unimplemented(format!(
                "dtype {} is not supported here", other
            ))),
        }
    }};
    (@ty F32) => { f32 };
    (@ty F64) => { f64 };
    (@ty F16) => { $crate::f16 };
    (@ty BF16) => { $crate::bf16 };
    (@ty I8) => { i8 };
    (@ty I16) => { i16 };
    (@ty I32) => { i32 };
    (@ty I64) => { i64 };
    (@ty U8) => { u8 };
    (@ty U16) => { u16 };
    (@ty U32) => { u32 };
    (@ty U64) => { u64 };
    (@ty Bool) => { bool };
    (@ty C64) => { $crate::c64 };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tf_numbers_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_tf(d.as_tf()), Some(*d));
        }
        assert_eq!(DType::from_tf(7), None); // DT_STRING
    }

    #[test]
    fn sizes_match_rust_types() {
        fn check<T: Element>() {
            assert_eq!(std::mem::size_of::<T>(), T::DTYPE.size());
        }
        check::<f32>();
        check::<f16>();
        check::<bf16>();
        check::<i64>();
        check::<bool>();
    }
}

//! Counter-based random numbers, bit-exact with TensorFlow's CPU kernels:
//! Philox4x32-10 (`philox_random.h`), the distributions of
//! `random_distributions.h` (uint32 -> float by mantissa bits, Box-Muller
//! normals, truncated normals by rejection, integer ranges by modulo) and the
//! output grouping of `random_op_cpu.h`: output group `g` starts `g` Philox
//! blocks into the stream (256 blocks per 4 outputs for truncated normals), so
//! results do not depend on how the work is split between threads.

use half::{bf16, f16};
use rayon::prelude::*;
use tfa_core::{Element, Error, Result, TensorMut};

/// Philox4x32 with 10 rounds: a 128-bit counter and a 64-bit key.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Philox {
    pub counter: [u32; 4],
    pub key: [u32; 2],
}

const W32A: u32 = 0x9E37_79B9;
const W32B: u32 = 0xBB67_AE85;
const M4X32A: u32 = 0xD251_1F53;
const M4X32B: u32 = 0xCD9E_8D57;

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    (p as u32, (p >> 32) as u32)
}

impl Philox {
    pub fn new(counter: [u32; 4], key: [u32; 2]) -> Self {
        Philox { counter, key }
    }

    /// From the uint64 key and counter tensors of the V2 ops: low 32 bits first.
    pub fn from_u64(key: u64, counter: [u64; 2]) -> Self {
        Philox {
            counter: [
                counter[0] as u32,
                (counter[0] >> 32) as u32,
                counter[1] as u32,
                (counter[1] >> 32) as u32,
            ],
            key: [key as u32, (key >> 32) as u32],
        }
    }

    /// The key as the V2 ops' uint64 `key` tensor holds it.
    pub fn key_u64(&self) -> u64 {
        self.key[0] as u64 | (self.key[1] as u64) << 32
    }

    /// The counter as the V2 ops' uint64[2] `counter` tensor holds it.
    pub fn counter_u64(&self) -> [u64; 2] {
        [
            self.counter[0] as u64 | (self.counter[1] as u64) << 32,
            self.counter[2] as u64 | (self.counter[3] as u64) << 32,
        ]
    }

    /// Advances the counter by `count` blocks (TensorFlow's `Skip`, carries
    /// included exactly as it does them).
    pub fn skip(&mut self, count: u64) {
        let lo = count as u32;
        let mut hi = (count >> 32) as u32;
        let c = &mut self.counter;
        c[0] = c[0].wrapping_add(lo);
        if c[0] < lo {
            hi = hi.wrapping_add(1);
        }
        c[1] = c[1].wrapping_add(hi);
        if c[1] < hi {
            c[2] = c[2].wrapping_add(1);
            if c[2] == 0 {
                c[3] = c[3].wrapping_add(1);
            }
        }
    }

    #[inline(always)]
    fn round(c: [u32; 4], k: [u32; 2]) -> [u32; 4] {
        let (lo0, hi0) = mulhilo(M4X32A, c[0]);
        let (lo1, hi1) = mulhilo(M4X32B, c[2]);
        [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0]
    }

    /// The next block of four uint32s.
    #[inline]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> [u32; 4] {
        let mut c = self.counter;
        let mut k = self.key;
        for r in 0..10 {
            if r > 0 {
                k[0] = k[0].wrapping_add(W32A);
                k[1] = k[1].wrapping_add(W32B);
            }
            c = Self::round(c, k);
        }
        let ctr = &mut self.counter;
        ctr[0] = ctr[0].wrapping_add(1);
        if ctr[0] == 0 {
            ctr[1] = ctr[1].wrapping_add(1);
            if ctr[1] == 0 {
                ctr[2] = ctr[2].wrapping_add(1);
                if ctr[2] == 0 {
                    ctr[3] = ctr[3].wrapping_add(1);
                }
            }
        }
        c
    }
}

/// TensorFlow's `GenerateKey`: the generator of the V1 stateless ops (and of
/// `StatelessRandomGetKeyCounter`) for a seed pair. int32 seeds are
/// sign-extended to 64 bits first, as TensorFlow's conversion does.
pub fn philox_from_seed(seed0: u64, seed1: u64) -> Philox {
    let counter = [
        seed0 as u32,
        (seed0 >> 32) as u32,
        seed1 as u32,
        (seed1 >> 32) as u32,
    ];
    let mix = Philox::new(counter, [0x3ec8_f720, 0x0246_1e29]).next();
    Philox::new([0, 0, mix[2], mix[3]], [mix[0], mix[1]])
}

// glibc's own functions, the ones TensorFlow's kernels call.
extern "C" {
    fn sincosf(x: f32, s: *mut f32, c: *mut f32);
    fn sincos(x: f64, s: *mut f64, c: *mut f64);
    fn logf(x: f32) -> f32;
    fn log(x: f64) -> f64;
}

#[inline]
pub fn uint32_to_float(x: u32) -> f32 {
    f32::from_bits((127 << 23) | (x & 0x7f_ffff)) - 1.0
}

#[inline]
pub fn uint64_to_double(x0: u32, x1: u32) -> f64 {
    let man = ((x0 & 0xf_ffff) as u64) << 32 | x1 as u64;
    f64::from_bits((1023u64 << 52) | man) - 1.0
}

#[inline]
fn uint16_to_half(x: u32) -> f16 {
    let v = f16::from_bits((15 << 10) | (x as u16 & 0x3ff));
    f16::from_f32(v.to_f32() - 1.0)
}

#[inline]
fn uint16_to_bf16(x: u32) -> bf16 {
    let v = bf16::from_bits((127 << 7) | (x as u16 & 0x7f));
    bf16::from_f32(v.to_f32() - 1.0)
}

/// Two standard normals from two uint32s (`BoxMullerFloat`).
#[inline]
pub fn box_muller_f32(x0: u32, x1: u32) -> (f32, f32) {
    let mut u1 = uint32_to_float(x0);
    if u1 < 1.0e-7 {
        u1 = 1.0e-7;
    }
    // `2.0f * M_PI * u` is a double product narrowed to float.
    let v1 = (2.0f64 * std::f64::consts::PI * uint32_to_float(x1) as f64) as f32;
    // SAFETY: C's logf has no preconditions (any float in, no memory).
    let u2 = (-2.0f32 * unsafe { logf(u1) }).sqrt();
    let (mut s, mut c) = (0f32, 0f32);
    // SAFETY: sincosf writes one float through each pointer; both are locals.
    unsafe { sincosf(v1, &mut s, &mut c) };
    (s * u2, c * u2)
}

/// Two standard normals from four uint32s (`BoxMullerDouble`).
#[inline]
pub fn box_muller_f64(x0: u32, x1: u32, x2: u32, x3: u32) -> (f64, f64) {
    let mut u1 = uint64_to_double(x0, x1);
    if u1 < 1.0e-7 {
        u1 = 1.0e-7;
    }
    let v1 = 2.0 * std::f64::consts::PI * uint64_to_double(x2, x3);
    // SAFETY: C's log has no preconditions (any double in, no memory).
    let u2 = (-2.0 * unsafe { log(u1) }).sqrt();
    let (mut s, mut c) = (0f64, 0f64);
    // SAFETY: sincos writes one double through each pointer; both are locals.
    unsafe { sincos(v1, &mut s, &mut c) };
    (s * u2, c * u2)
}

/// A distribution: which elements one group of output takes.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Dist {
    /// `[0, 1)` for floats.
    Uniform,
    /// Standard normal (Box-Muller).
    Normal,
    /// Standard normal restricted to `(-2, 2)` by rejection.
    TruncatedNormal,
    /// Integers in `[lo, hi)` (as their two's-complement bits; `lo < hi`).
    UniformInt { lo: i64, hi: i64 },
    /// Every value of the integer type.
    FullInt,
}

/// An output element type the distributions produce.
pub trait RandomElem: Element + Copy + Send + Sync + Default {
    /// Outputs per Philox block (4 for 32-bit and narrower, 2 for 64-bit).
    const GROUP: usize;
    fn uniform(s: [u32; 4], out: &mut [Self; 4]) -> Result<()>;
    fn normal(s: [u32; 4], out: &mut [Self; 4]) -> Result<()>;
    /// Fills a group from a one-uint32-at-a-time source.
    fn truncated(next: &mut dyn FnMut() -> u32, out: &mut [Self; 4]) -> Result<()>;
    fn int_range(s: [u32; 4], lo: i64, hi: i64, out: &mut [Self; 4]) -> Result<()>;
    fn full_int(s: [u32; 4], out: &mut [Self; 4]) -> Result<()>;
}

fn not_for(what: &str, t: &str) -> Error {
    Error::Internal(format!("{what} random numbers are not defined for {t}"))
}

macro_rules! float32_like {
    ($t:ty, $uni:expr, $from:expr) => {
        impl RandomElem for $t {
            const GROUP: usize = 4;
            #[inline]
            fn uniform(s: [u32; 4], out: &mut [Self; 4]) -> Result<()> {
                for i in 0..4 {
                    out[i] = $uni(s[i]);
                }
                Ok(())
            }
            #[inline]
            fn normal(s: [u32; 4], out: &mut [Self; 4]) -> Result<()> {
                for i in [0, 2] {
                    let (a, b) = box_muller_f32(s[i], s[i + 1]);
                    out[i] = $from(a);
                    out[i + 1] = $from(b);
                }
                Ok(())
            }
            fn truncated(next: &mut dyn FnMut() -> u32, out: &mut [Self; 4]) -> Result<()> {
                let mut index = 0;
                loop {
                    let (x0, x1) = (next(), next());
                    let (a, b) = box_muller_f32(x0, x1);
                    for f in [a, b] {
                        if f.abs() < 2.0 {
                            out[index] = $from(f);
                            index += 1;
                            if index == 4 {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            fn int_range(_: [u32; 4], _: i64, _: i64, _: &mut [Self; 4]) -> Result<()> {
                Err(not_for("integer", stringify!($t)))
            }
            fn full_int(_: [u32; 4], _: &mut [Self; 4]) -> Result<()> {
                Err(not_for("integer", stringify!($t)))
            }
        }
    };
}

float32_like!(f32, uint32_to_float, |x: f32| x);
float32_like!(f16, uint16_to_half, f16::from_f32);
float32_like!(bf16, uint16_to_bf16, bf16::from_f32);

impl RandomElem for f64 {
    const GROUP: usize = 2;
    fn uniform(s: [u32; 4], out: &mut [Self; 4]) -> Result<()> {
        out[0] = uint64_to_double(s[0], s[1]);
        out[1] = uint64_to_double(s[2], s[3]);
        Ok(())
    }
    fn normal(s: [u32; 4], out: &mut [Self; 4]) -> Result<()> {
        (out[0], out[1]) = box_muller_f64(s[0], s[1], s[2], s[3]);
        Ok(())
    }
    fn truncated(next: &mut dyn FnMut() -> u32, out: &mut [Self; 4]) -> Result<()> {
        let mut index = 0;
        loop {
            let (x0, x1, x2, x3) = (next(), next(), next(), next());
            let (a, b) = box_muller_f64(x0, x1, x2, x3);
            for d in [a, b] {
                if d.abs() < 2.0 {
                    out[index] = d;
                    index += 1;
                    if index == 2 {
                        return Ok(());
                    }
                }
            }
        }
    }
    fn int_range(_: [u32; 4], _: i64, _: i64, _: &mut [Self; 4]) -> Result<()> {
        Err(not_for("integer", "f64"))
    }
    fn full_int(_: [u32; 4], _: &mut [Self; 4]) -> Result<()> {
        Err(not_for("integer", "f64"))
    }
}

macro_rules! int_elem {
    ($t:ty, $u:ty, 4) => {
        impl RandomElem for $t {
            const GROUP: usize = 4;
            fn int_range(s: [u32; 4], lo: i64, hi: i64, out: &mut [Self; 4]) -> Result<()> {
                let (lo, hi) = (lo as $t, hi as $t);
                let range = (hi as $u).wrapping_sub(lo as $u);
                for i in 0..4 {
                    out[i] = lo.wrapping_add((s[i] as $u % range) as $t);
                }
                Ok(())
            }
            fn full_int(s: [u32; 4], out: &mut [Self; 4]) -> Result<()> {
                for i in 0..4 {
                    out[i] = s[i] as $t;
                }
                Ok(())
            }
            int_elem!(@floats $t);
        }
    };
    ($t:ty, $u:ty, 2) => {
        impl RandomElem for $t {
            const GROUP: usize = 2;
            fn int_range(s: [u32; 4], lo: i64, hi: i64, out: &mut [Self; 4]) -> Result<()> {
                let (lo, hi) = (lo as $t, hi as $t);
                let range = (hi as $u).wrapping_sub(lo as $u);
                for i in 0..2 {
                    let bits = s[2 * i] as u64 | (s[2 * i + 1] as u64) << 32;
                    out[i] = lo.wrapping_add((bits as $u % range) as $t);
                }
                Ok(())
            }
            fn full_int(s: [u32; 4], out: &mut [Self; 4]) -> Result<()> {
                for i in 0..2 {
                    out[i] = (s[2 * i] as u64 | (s[2 * i + 1] as u64) << 32) as $t;
                }
                Ok(())
            }
            int_elem!(@floats $t);
        }
    };
    (@floats $t:ty) => {
        fn uniform(_: [u32; 4], _: &mut [Self; 4]) -> Result<()> {
            Err(not_for("uniform float", stringify!($t)))
        }
        fn normal(_: [u32; 4], _: &mut [Self; 4]) -> Result<()> {
            Err(not_for("normal", stringify!($t)))
        }
        fn truncated(_: &mut dyn FnMut() -> u32, _: &mut [Self; 4]) -> Result<()> {
            Err(not_for("normal", stringify!($t)))
        }
    };
}

int_elem!(i32, u32, 4);
int_elem!(u32, u32, 4);
int_elem!(i64, u64, 2);
int_elem!(u64, u64, 2);

/// Philox blocks reserved per truncated-normal output group
/// (`kReservedSamplesPerOutput` = 256 uint32s per output element).
fn truncated_skip<T: RandomElem>() -> u64 {
    (T::GROUP * 256 / 4) as u64
}

/// Output groups per parallel task.
const GROUPS_PER_TASK: usize = 1024;

/// One output group (group index `g`) from a generator positioned at the
/// stream start for truncated normals, or at the group for the others.
#[inline]
fn group<T: RandomElem>(dist: Dist, base: &Philox, g: u64, gen: &mut Philox) -> Result<[T; 4]> {
    let mut out = [T::default(); 4];
    match dist {
        Dist::Uniform => T::uniform(gen.next(), &mut out)?,
        Dist::Normal => T::normal(gen.next(), &mut out)?,
        Dist::FullInt => T::full_int(gen.next(), &mut out)?,
        Dist::UniformInt { lo, hi } => T::int_range(gen.next(), lo, hi, &mut out)?,
        Dist::TruncatedNormal => {
            let mut g_gen = *base;
            g_gen.skip(g * truncated_skip::<T>());
            let mut buf = [0u32; 4];
            let mut used = 4;
            let mut next = || {
                if used == 4 {
                    buf = g_gen.next();
                    used = 0;
                }
                used += 1;
                buf[used - 1]
            };
            T::truncated(&mut next, &mut out)?;
        }
    }
    Ok(out)
}

/// Fills `data` from the stream of `gen` as TensorFlow's CPU kernels do.
pub fn fill<T: RandomElem>(gen: Philox, dist: Dist, data: &mut [T]) -> Result<()> {
    let g = T::GROUP;
    let per_task = GROUPS_PER_TASK * g;
    let task = |(t, chunk): (usize, &mut [T])| -> Result<()> {
        let first = (t * GROUPS_PER_TASK) as u64;
        let mut cur = gen;
        cur.skip(first);
        for (i, out) in chunk.chunks_mut(g).enumerate() {
            let vals = group::<T>(dist, &gen, first + i as u64, &mut cur)?;
            out.copy_from_slice(&vals[..out.len()]);
        }
        Ok(())
    };
    if data.len() <= per_task {
        task((0, data))
    } else {
        data.par_chunks_mut(per_task).enumerate().try_for_each(task)
    }
}

/// `fill` on an output tensor of a type the distribution supports.
pub fn fill_tensor(gen: Philox, dist: Dist, out: &mut TensorMut) -> Result<()> {
    tfa_core::dispatch!(out.dtype, T => fill::<T>(gen, dist, out.data_mut::<T>()?);
        [F32, F64, F16, BF16, I32, I64, U32, U64])
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors of the Philox4x32-10 reference (Salmon et al.,
    // Random123 kat_vectors), as TensorFlow's philox_random_test checks them.
    #[test]
    fn philox_known_answers() {
        let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
            (
                [0, 0, 0, 0],
                [0, 0],
                [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
            ),
            (
                [0xffffffff; 4],
                [0xffffffff; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (ctr, key, want) in cases {
            assert_eq!(Philox::new(ctr, key).next(), want);
        }
    }

    #[test]
    fn skip_matches_stepping() {
        let base = Philox::new([0xffff_fff0, 0xffff_ffff, 7, 0], [1, 2]);
        let mut a = base;
        for _ in 0..37 {
            a.next();
        }
        let mut b = base;
        b.skip(37);
        assert_eq!(a, b);
        assert_eq!(a.next(), b.next());
    }

    #[test]
    fn results_do_not_depend_on_the_split() {
        let gen = philox_from_seed(1, 2);
        for dist in [Dist::Uniform, Dist::Normal, Dist::TruncatedNormal] {
            let mut big = vec![0f32; GROUPS_PER_TASK * 4 * 3 + 5];
            fill(gen, dist, &mut big).unwrap();
            // The same elements computed one group at a time, serially.
            let mut cur = gen;
            for (g, c) in big.chunks(4).enumerate() {
                let v = group::<f32>(dist, &gen, g as u64, &mut cur).unwrap();
                assert_eq!(&v[..c.len()], c, "{dist:?} group {g}");
            }
        }
    }

    #[test]
    fn ranges() {
        let gen = philox_from_seed(7, 9);
        let mut u = vec![0f64; 999];
        fill(gen, Dist::Uniform, &mut u).unwrap();
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mut t = vec![0f32; 999];
        fill(gen, Dist::TruncatedNormal, &mut t).unwrap();
        assert!(t.iter().all(|&x| x.abs() < 2.0));
        let mut i = vec![0i32; 999];
        fill(gen, Dist::UniformInt { lo: -3, hi: 5 }, &mut i).unwrap();
        assert!(i.iter().all(|&x| (-3..5).contains(&x)));
        let mut w = vec![0i64; 99];
        fill(
            gen,
            Dist::UniformInt {
                lo: i64::MIN,
                hi: i64::MAX,
            },
            &mut w,
        )
        .unwrap();
    }
}

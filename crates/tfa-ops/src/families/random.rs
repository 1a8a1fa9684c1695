//! Stateless random numbers, bit-exact with TensorFlow's CPU kernels
//! (Philox4x32-10; `alg` 1 Philox, 3 auto-select = Philox; ThreeFry (2) is
//! refused as TensorFlow's CPU kernels refuse it). Shapes, seeds, keys,
//! counters, algorithms and integer bounds live in host memory: the kernel
//! reads them to set up the generator.

use super::{spec_op, FLOAT, INDEX};
use crate::spec::allocate;
use crate::{OpContext, OpDef, OutputPlan, TypeConstraint};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorView};
use tfa_kernels::host::random::{self, Dist, Philox};

const INT: &[DType] = &[DType::I32, DType::I64];
const FULL_INT: &[DType] = &[DType::I32, DType::I64, DType::U32, DType::U64];

/// `tensor::MakeShape`: a vector of non-negative sizes.
fn make_shape(t: &TensorView) -> Result<Vec<usize>> {
    super::shape_vector(t, || {
        format!(
            "shape must be a vector of {{int32,int64}}, got shape {}",
            fmt_shape(&t.shape)
        )
    })
}

/// The generator of the V1 ops for a `[2]` seed (TensorFlow's `GenerateKey`).
fn seed_philox(seed: &TensorView) -> Result<Philox> {
    if seed.shape != [2] {
        return Err(Error::InvalidArgument(format!(
            "seed must have shape [2], not {}",
            fmt_shape(&seed.shape)
        )));
    }
    let s = seed.to_i64_vec()?;
    Ok(random::philox_from_seed(s[0] as u64, s[1] as u64))
}

/// Key, counter and algorithm of the V2 ops (`GetKeyCounterAlgFromInputs`).
/// Returns the algorithm id (auto-select resolved) and the Philox generator
/// the key and counter give; the caller refuses other algorithms later, where
/// TensorFlow does (after the empty-output check).
fn key_counter_alg(ctx: &dyn OpContext) -> Result<(i32, Philox)> {
    let alg_t = ctx.input(3)?;
    if alg_t.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "input 3 (0-based) must have shape [], not {}",
            fmt_shape(&alg_t.shape)
        )));
    }
    if alg_t.dtype != DType::I32 {
        return Err(Error::InvalidArgument(format!(
            "dtype of input 3 (0-based) must be int32, not {}",
            alg_t.dtype
        )));
    }
    let mut alg = alg_t.data::<i32>()?[0];
    if alg == 3 {
        alg = 1; // RNG_ALG_AUTO_SELECT is Philox on CPU
    }
    let (key, counter) = (ctx.input(1)?, ctx.input(2)?);
    if key.shape != [1] {
        return Err(Error::InvalidArgument(format!(
            "key must have shape [1], not {}. (Note that batched keys are not supported yet.)",
            fmt_shape(&key.shape)
        )));
    }
    // TensorFlow passes the algorithm id where the minimum counter size goes
    // (so a Philox counter of length 1 passes; its missing half reads as 0).
    let min_counter = alg;
    if counter.rank() != 1 || (counter.shape[0] as i64) < min_counter as i64 {
        return Err(Error::InvalidArgument(format!(
            "counter must be a vector with length at least {min_counter}; got shape: {}. \
             (Note that batched counters are not supported yet.)",
            fmt_shape(&counter.shape)
        )));
    }
    let k = key.data::<u64>()?[0];
    let c = counter.data::<u64>()?;
    let c1 = c.get(1).copied().unwrap_or(0);
    Ok((alg, Philox::from_u64(k, [c[0], c1])))
}

/// Scalar integer bound of the Int ops, as the output type sees it.
fn bound(t: &TensorView, name: &str) -> Result<i64> {
    if t.rank() != 0 {
        return Err(Error::InvalidArgument(format!(
            "{name} must be 0-D, got shape {}",
            fmt_shape(&t.shape)
        )));
    }
    Ok(match t.dtype {
        DType::U32 => t.data::<u32>()?[0] as i64,
        DType::U64 => t.data::<u64>()?[0] as i64,
        _ => t.to_i64_vec()?[0],
    })
}

fn int_dist(ctx: &dyn OpContext, lo_idx: usize, dtype: DType) -> Result<Dist> {
    let lo = bound(&ctx.input(lo_idx)?, "minval")?;
    let hi = bound(&ctx.input(lo_idx + 1)?, "maxval")?;
    let less = match dtype {
        DType::U32 | DType::U64 => (lo as u64) < (hi as u64),
        _ => lo < hi,
    };
    if !less {
        return Err(Error::InvalidArgument(format!(
            "Need minval < maxval, got {lo} >= {hi}"
        )));
    }
    Ok(Dist::UniformInt { lo, hi })
}

/// A stateless random op's generator and distribution (`None`: an empty
/// output, nothing to draw and nothing more checked, as TensorFlow) and
/// its output.
type RandomPlan = (Option<(Philox, Dist)>, OutputPlan);

/// V1 ops: (shape, seed[, minval, maxval]).
fn v1(ctx: &dyn OpContext, dist: Dist) -> Result<RandomPlan> {
    let shape = make_shape(&ctx.input(0)?)?;
    let gen = seed_philox(&ctx.input(1)?)?;
    let dtype = ctx.attrs().dtype("dtype")?;
    let out = OutputPlan::new(dtype, shape);
    if out.shape.contains(&0) {
        return Ok((None, out));
    }
    let dist = match dist {
        Dist::UniformInt { .. } => int_dist(ctx, 2, dtype)?,
        d => d,
    };
    Ok((Some((gen, dist)), out))
}

/// V2 ops: (shape, key, counter, alg[, minval, maxval]).
fn v2(ctx: &dyn OpContext, dist: Dist) -> Result<RandomPlan> {
    let (alg, gen) = key_counter_alg(ctx)?;
    let shape = make_shape(&ctx.input(0)?)?;
    let dtype = ctx.attrs().dtype("dtype")?;
    let out = OutputPlan::new(dtype, shape);
    if out.shape.contains(&0) {
        return Ok((None, out));
    }
    let dist = match dist {
        Dist::UniformInt { .. } => int_dist(ctx, 4, dtype)?,
        d => d,
    };
    if alg != 1 {
        return Err(Error::InvalidArgument(format!(
            "Unsupported algorithm id: {alg}"
        )));
    }
    Ok((Some((gen, dist)), out))
}

fn draw(ctx: &dyn OpContext, (draw, out): &RandomPlan) -> Result<()> {
    let mut out = allocate(ctx, 0, out)?;
    match draw {
        Some((gen, dist)) => random::fill_tensor(*gen, *dist, &mut out),
        None => Ok(()),
    }
}

/// The Philox key and counter of a seed.
fn get_key_counter_plan(ctx: &dyn OpContext) -> Result<(Philox, Vec<OutputPlan>)> {
    let gen = seed_philox(&ctx.input(0)?)?;
    let outs = vec![
        OutputPlan::new(DType::U64, vec![1]),
        OutputPlan::new(DType::U64, vec![2]),
    ];
    Ok((gen, outs))
}

fn get_key_counter(ctx: &dyn OpContext, (gen, outs): &(Philox, Vec<OutputPlan>)) -> Result<()> {
    allocate(ctx, 0, &outs[0])?
        .data_mut::<u64>()?
        .copy_from_slice(&[gen.key_u64()]);
    allocate(ctx, 1, &outs[1])?
        .data_mut::<u64>()?
        .copy_from_slice(&gen.counter_u64());
    Ok(())
}

macro_rules! random_op {
    ($name:literal, $types:expr, $v:ident, $dist:expr, $hm:expr, $summary:literal) => {
        spec_op!(
            plan: |c| $v(c, $dist) => RandomPlan,
            run: |c, p| draw(c, p),
            def: {
                name: $name,
                family: crate::Family::Random,
                summary: $summary,
                constraints: random_op!(@c $v, $types),
                attrs: &[],
                host_memory: $hm,
                int32_host_memory: &[],
            }
        )
    };
    (@c v1, $types:expr) => {
        &[
            TypeConstraint { attr: "dtype", types: $types },
            TypeConstraint { attr: "T", types: INDEX },
            TypeConstraint { attr: "Tseed", types: INDEX },
        ]
    };
    (@c v2, $types:expr) => {
        &[
            TypeConstraint { attr: "dtype", types: $types },
            TypeConstraint { attr: "Tshape", types: INDEX },
        ]
    };
}

const V1_HM: &[&str] = &["shape", "seed"];
const V1_INT_HM: &[&str] = &["shape", "seed", "minval", "maxval"];
const V2_HM: &[&str] = &["shape", "key", "counter", "alg"];
const V2_INT_HM: &[&str] = &["shape", "key", "counter", "alg", "minval", "maxval"];

pub(crate) const OPS: &[OpDef] = &[
    spec_op!(
        plan: |c| get_key_counter_plan(c) => (Philox, Vec<OutputPlan>),
        run: |c, p| get_key_counter(c, p),
        def: {
            name: "StatelessRandomGetKeyCounter",
            family: crate::Family::Random,
            summary: "Philox key and counter for a seed (`seed`, `key`, `counter` in host memory)",
            constraints: &[TypeConstraint {
                attr: "Tseed",
                types: INDEX,
            }],
            attrs: &[],
            host_memory: &["seed", "key", "counter"],
            int32_host_memory: &[],
        }
    ),
    spec_op!(
        plan: |_c| Ok(OutputPlan::new(DType::I32, vec![])) => OutputPlan,
        run: |c, p| {
            // Auto-select is Philox (1), as on TensorFlow's CPU.
            allocate(c, 0, p)?.data_mut::<i32>()?[0] = 1;
            Ok(())
        },
        def: {
            name: "StatelessRandomGetAlg",
            family: crate::Family::Random,
            summary: "the algorithm auto-select picks: 1 (Philox), in host memory",
            constraints: &[],
            attrs: &[],
            host_memory: &["alg"],
            int32_host_memory: &[],
        }
    ),
    random_op!(
        "StatelessRandomUniformV2",
        FLOAT,
        v2,
        Dist::Uniform,
        V2_HM,
        "uniform [0, 1), bit-exact with TensorFlow CPU; alg 1 (Philox) or 3 (auto)"
    ),
    random_op!(
        "StatelessRandomNormalV2",
        FLOAT,
        v2,
        Dist::Normal,
        V2_HM,
        "standard normal (Box-Muller), bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessTruncatedNormalV2",
        FLOAT,
        v2,
        Dist::TruncatedNormal,
        V2_HM,
        "normal truncated to (-2, 2) by rejection, bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessRandomUniformIntV2",
        INT,
        v2,
        Dist::UniformInt { lo: 0, hi: 1 },
        V2_INT_HM,
        "integers in [minval, maxval) (host memory), bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessRandomUniformFullIntV2",
        FULL_INT,
        v2,
        Dist::FullInt,
        V2_HM,
        "integers over the whole type, bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessRandomUniform",
        FLOAT,
        v1,
        Dist::Uniform,
        V1_HM,
        "uniform [0, 1) from a `[2]` seed (host memory), bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessRandomNormal",
        FLOAT,
        v1,
        Dist::Normal,
        V1_HM,
        "standard normal from a `[2]` seed, bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessTruncatedNormal",
        FLOAT,
        v1,
        Dist::TruncatedNormal,
        V1_HM,
        "truncated normal from a `[2]` seed, bit-exact with TensorFlow CPU"
    ),
    random_op!(
        "StatelessRandomUniformInt",
        INT,
        v1,
        Dist::UniformInt { lo: 0, hi: 1 },
        V1_INT_HM,
        "integers in [minval, maxval) from a `[2]` seed, bit-exact with TensorFlow CPU"
    ),
];

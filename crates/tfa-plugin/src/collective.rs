//! `TfaAllReduce`: tf_adapter's own all-reduce across the NPUs of one process,
//! used by `tf_adapter.distribute.NpuAllReduce`.
//!
//! On the host backend every NPU's memory is host memory, so instead of
//! TensorFlow's ring (2(N-1) steps of chunk copies and in-place `Add`s per
//! tensor) the replicas meet here and their tensors are reduced in one pass:
//! each replica's thread pool sums one slice of every tensor over all replicas
//! and writes it into every replica's output. One op takes a whole list of
//! gradients, so one meeting serves a whole optimizer step (no packing copies).
//!
//! The kernel is synchronous: replicas that arrive first wait (their
//! TensorFlow thread blocked) until the last one arrives, which runs the
//! slices on every replica's pool and wakes them. TensorFlow's C API cannot
//! complete an asynchronous kernel later: `TF_NewAsyncKernelBuilder` hands
//! `compute_async` a pointer to its by-value `done` callback, which dangles
//! once the call returns. So one all-reduce over N NPUs holds N of
//! TensorFlow's inter-op threads (the Python side checks there are enough).
//! A meeting that does not fill within `TFA_ALLREDUCE_TIMEOUT` seconds
//! (default 300) fails every waiting replica with DeadlineExceeded instead of
//! hanging the step.
//!
//! `create`, `compute` and `delete` are the kernel callbacks given to
//! `TF_NewKernelBuilder`, `same_shapes` the shape function given to
//! `TF_OpDefinitionBuilderSetShapeInferenceFunction`: TensorFlow calls them
//! with live contexts and statuses for the duration of the call, and
//! `compute`/`delete` with the pointer `create` returned. Their `SAFETY`
//! comments refer to that contract.

use crate::device::platform::DEVICE_TYPE;
use crate::device::{get as device, Npu};
use crate::ffi::status::{check, guard, Status};
use crate::ffi::*;
use half::{bf16, f16};
use std::collections::HashMap;
use std::ffi::{c_void, CStr};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tfa_core::{DType, Error, Result};
use tfa_kernels::host::all_reduce::reduce_into;
use tfa_kernels::host::numeric::Widen;

/// The op (`tfa_ops::glue::GLUE` names it).
pub(crate) const OP: &CStr = c"TfaAllReduce";
const TYPES: [DType; 4] = [DType::F32, DType::F16, DType::BF16, DType::F64];

/// Attributes of one node.
struct Config {
    group_size: usize,
    instance_key: i64,
    mean: bool,
}

/// One replica's tensors: (input, output, elements) per tensor of the list.
/// The handles are released when the replica is dropped, after the
/// reduction (or the failure) of its meeting.
struct Replica {
    device: usize,
    npu: &'static Npu,
    dtype: DType,
    tensors: Vec<(*mut TF_Tensor, *mut TF_Tensor, usize)>,
}
// SAFETY: the handles are owned by the replica (deleted in its Drop, from
// whichever thread drops it: TF_DeleteTensor only drops a reference count),
// and TensorFlow's tensor accessors may be called from any thread.
unsafe impl Send for Replica {}
// SAFETY: shared replicas are only read through (`reduce_part`): the inputs
// are never written, and each thread writes a disjoint slice of the outputs.
unsafe impl Sync for Replica {}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            for &(input, output, _) in &self.tensors {
                // SAFETY: each handle came from TF_GetInput/TF_AllocateOutput once.
                unsafe {
                    if !input.is_null() {
                        api.TF_DeleteTensor(input);
                    }
                    if !output.is_null() {
                        api.TF_DeleteTensor(output);
                    }
                }
            }
        }
    }
}

/// Where the replicas of a meeting learn how it ended.
#[derive(Default)]
struct Outcome {
    result: Mutex<Option<Result<()>>>,
    ready: Condvar,
}

impl Outcome {
    fn publish(&self, result: Result<()>) {
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        self.ready.notify_all();
    }

    fn wait(&self) -> Result<()> {
        let mut r = self.result.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(result) = r.as_ref() {
                return result.clone();
            }
            r = self.ready.wait(r).unwrap_or_else(|p| p.into_inner());
        }
    }
}

struct Meeting {
    size: usize,
    since: Instant,
    replicas: Vec<Replica>,
    outcome: Arc<Outcome>,
}

fn meetings() -> &'static Mutex<HashMap<i64, Meeting>> {
    static M: OnceLock<Mutex<HashMap<i64, Meeting>>> = OnceLock::new();
    M.get_or_init(|| Mutex::new(HashMap::new()))
}

fn timeout() -> Duration {
    let secs = std::env::var("TFA_ALLREDUCE_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(300.0);
    Duration::from_secs_f64(secs)
}

/// Registers the op and its NPU kernels (one per element type).
pub(crate) fn register() -> Result<()> {
    let api = api()?;
    let status = Status::new()?;
    // SAFETY: TensorFlow copies the strings; builders are consumed by the
    // register calls.
    unsafe {
        let b = api.TF_NewOpDefinitionBuilder(OP.as_ptr());
        api.TF_OpDefinitionBuilderAddInput(b, c"input: N * T".as_ptr());
        api.TF_OpDefinitionBuilderAddOutput(b, c"output: N * T".as_ptr());
        for spec in [
            c"T: {float, half, bfloat16, double}",
            c"N: int >= 1",
            c"group_size: int >= 1",
            c"instance_key: int",
            c"mean: bool = false",
        ] {
            api.TF_OpDefinitionBuilderAddAttr(b, spec.as_ptr());
        }
        // Not stateful: tf.function chains stateful ops in program order
        // across devices (automatic control dependencies), which would make
        // each replica wait for the previous replica's all-reduce, which
        // waits for it. Instances never merge (distinct inputs and keys)
        // and cannot be constant-folded (no CPU kernel).
        api.TF_OpDefinitionBuilderSetShapeInferenceFunction(b, Some(same_shapes));
        api.TF_RegisterOpDefinition(b, status.0);
        check(status.0).map_err(|e| e.context("registering op TfaAllReduce"))?;
        for t in TYPES {
            let b = api.TF_NewKernelBuilder(
                OP.as_ptr(),
                DEVICE_TYPE.as_ptr(),
                Some(create),
                Some(compute),
                Some(delete),
            );
            api.TF_KernelBuilder_TypeConstraint(b, c"T".as_ptr(), t.as_tf(), status.0);
            if let Err(e) = check(status.0) {
                api.TF_DeleteKernelBuilder(b);
                return Err(e.context(format!("TfaAllReduce T={t}")));
            }
            api.TF_RegisterKernelBuilder(c"tfa::AllReduce".as_ptr(), b, status.0);
            check(status.0).map_err(|e| e.context("registering the TfaAllReduce kernel"))?;
        }
    }
    Ok(())
}

/// Output i has input i's shape.
unsafe extern "C" fn same_shapes(ctx: *mut TF_ShapeInferenceContext, status: *mut TF_Status) {
    guard(status, (), || {
        let api = api()?;
        // SAFETY: `ctx` and `status` are live for the call (module docs); `i`
        // stays below the input count (outputs: one per input); `h` is a
        // handle we create and delete once.
        unsafe {
            for i in 0..api.TF_ShapeInferenceContextNumInputs(ctx) {
                let h = api.TF_NewShapeHandle();
                api.TF_ShapeInferenceContextGetInput(ctx, i as i32, h, status);
                if check(status).is_ok() {
                    api.TF_ShapeInferenceContextSetOutput(ctx, i as i32, h, status);
                }
                api.TF_DeleteShapeHandle(h);
                check(status)?;
            }
        }
        Ok(())
    })
}

unsafe extern "C" fn create(ctx: *mut TF_OpKernelConstruction) -> *mut c_void {
    let Ok(st) = Status::new() else {
        return std::ptr::null_mut();
    };
    let config = guard(st.0, std::ptr::null_mut(), || {
        let api = api()?;
        let (mut size, mut key, mut mean) = (0i64, 0i64, 0u8);
        // SAFETY: `ctx` is the live construction context (module docs), `st`
        // a live status; the names are NUL-terminated and the outputs locals.
        unsafe {
            api.TF_OpKernelConstruction_GetAttrInt64(ctx, c"group_size".as_ptr(), &mut size, st.0);
            check(st.0)?;
            api.TF_OpKernelConstruction_GetAttrInt64(ctx, c"instance_key".as_ptr(), &mut key, st.0);
            check(st.0)?;
            api.TF_OpKernelConstruction_GetAttrBool(ctx, c"mean".as_ptr(), &mut mean, st.0);
        }
        check(st.0)?;
        let config = Config {
            group_size: size.max(1) as usize,
            instance_key: key,
            mean: mean != 0,
        };
        Ok(Box::into_raw(Box::new(config)) as *mut c_void)
    });
    if config.is_null() {
        if let Ok(api) = api() {
            // SAFETY: `ctx` is live (module docs) and `st` holds the error.
            unsafe { api.TF_OpKernelConstruction_Failure(ctx, st.0) };
        }
    }
    config
}

unsafe extern "C" fn delete(kernel: *mut c_void) {
    if !kernel.is_null() {
        // SAFETY: a non-null kernel is the Box `create` leaked with
        // Box::into_raw; TensorFlow deletes each kernel once.
        drop(unsafe { Box::from_raw(kernel as *mut Config) });
    }
}

unsafe extern "C" fn compute(kernel: *mut c_void, ctx: *mut TF_OpKernelContext) {
    // SAFETY: `kernel` is null or the Config `create` returned, alive until
    // `delete` (module docs).
    let Some(config) = (unsafe { (kernel as *const Config).as_ref() }) else {
        return;
    };
    let Ok(st) = Status::new() else { return };
    // SAFETY: `ctx` is the live kernel context TensorFlow passed.
    guard(st.0, (), || join(config, unsafe { prepare(ctx) }?));
    if check(st.0).is_err() {
        if let Ok(api) = api() {
            // SAFETY: `ctx` is live (module docs) and `st` holds the error.
            unsafe { api.TF_OpKernelContext_Failure(ctx, st.0) };
        }
    }
}

/// Reads this replica's inputs and allocates its outputs.
///
/// # Safety
/// `ctx` must be the live kernel context TensorFlow passed to `compute`.
unsafe fn prepare(ctx: *mut TF_OpKernelContext) -> Result<Replica> {
    let api = api()?;
    let st = Status::new()?;
    // SAFETY: `ctx` is live (this function's contract).
    let id = unsafe { api.TF_GetDeviceId(ctx) }.max(0) as usize;
    let mut replica = Replica {
        device: id,
        npu: device(id)?,
        dtype: DType::F32,
        tensors: Vec::new(),
    };
    // SAFETY: `ctx` is live (this function's contract).
    let inputs = unsafe { api.TF_NumInputs(ctx) };
    for i in 0..inputs {
        let mut t: *mut TF_Tensor = std::ptr::null_mut();
        // SAFETY: `ctx` is live, `i` below its input count, `t` a local the
        // call writes.
        unsafe { api.TF_GetInput(ctx, i, &mut t, st.0) };
        check(st.0)?;
        // SAFETY: `t` is the live input handle TF_GetInput just returned
        // (success checked); `dims` holds its rank's dimensions for the
        // output (TfaAllReduce outputs have one output per input).
        let (raw, elements, out) = unsafe {
            let raw = api.TF_TensorType(t);
            let dims: Vec<i64> = (0..api.TF_NumDims(t)).map(|d| api.TF_Dim(t, d)).collect();
            let bytes = api.TF_TensorByteSize(t);
            let elements = api.TF_TensorElementCount(t).max(0) as usize;
            let out =
                api.TF_AllocateOutput(ctx, i, raw, dims.as_ptr(), dims.len() as i32, bytes, st.0);
            (raw, elements, out)
        };
        replica.tensors.push((t, out, elements));
        check(st.0).map_err(|e| e.context(format!("TfaAllReduce on NPU:{id}: output {i}")))?;
        replica.dtype = DType::from_tf(raw)
            .filter(|d| TYPES.contains(d))
            .ok_or_else(|| Error::Unimplemented(format!("TfaAllReduce: dtype {raw}")))?;
    }
    Ok(replica)
}

/// Adds a replica to its meeting and returns when the meeting is over: the
/// last replica to arrive runs the reduction, the others wait for it.
fn join(config: &Config, replica: Replica) -> Result<()> {
    let key = config.instance_key;
    let mut all = meetings().lock().unwrap_or_else(|p| p.into_inner());
    let meeting = all.entry(key).or_insert_with(|| Meeting {
        size: config.group_size,
        since: Instant::now(),
        replicas: Vec::new(),
        outcome: Arc::default(),
    });
    if let Some(first) = meeting.replicas.first() {
        let agree = meeting.size == config.group_size
            && first.dtype == replica.dtype
            && first.tensors.len() == replica.tensors.len()
            && first
                .tensors
                .iter()
                .zip(&replica.tensors)
                .all(|(a, b)| a.2 == b.2);
        if !agree {
            let e = Error::InvalidArgument(format!(
                "TfaAllReduce instance {key}: replicas disagree on the group size, dtype or \
                 tensor sizes (NPU:{} vs NPU:{})",
                first.device, replica.device
            ));
            if let Some(m) = all.remove(&key) {
                m.outcome.publish(Err(e.clone()));
            }
            return Err(e);
        }
    }
    meeting.replicas.push(replica);
    let outcome = Arc::clone(&meeting.outcome);
    if meeting.replicas.len() < meeting.size {
        drop(all);
        watchdog();
        return outcome.wait();
    }
    let Some(meeting) = all.remove(&key) else {
        return Err(Error::Internal(format!(
            "TfaAllReduce instance {key}: meeting lost"
        )));
    };
    drop(all);
    let result = reduce(meeting.replicas, config.mean);
    outcome.publish(result.clone());
    result
}

/// Splits the reduction into one slice per replica, each on that replica's
/// NPU pool, and waits for all of them.
fn reduce(mut replicas: Vec<Replica>, mean: bool) -> Result<()> {
    // Replica order (by device) fixes the summation order: identical outputs.
    replicas.sort_by_key(|r| r.device);
    let parts = replicas.len();
    let scale = if mean { 1.0 / parts as f64 } else { 1.0 };
    let replicas = Arc::new(replicas);
    let latch = Arc::new((Mutex::new((parts, None::<Error>)), Condvar::new()));
    for part in 0..parts {
        let pool = replicas[part].npu.pool();
        let (replicas, latch) = (Arc::clone(&replicas), Arc::clone(&latch));
        let work = move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: `join` admitted these replicas only if they agree
                // on dtype, tensor count and element counts; the Arc keeps
                // their handles alive until every part is done; each part
                // writes only its own slice of the outputs.
                unsafe { reduce_part(&replicas, part, parts, scale) }
            }))
            .unwrap_or_else(|_| Err(Error::Internal("TfaAllReduce: a slice panicked".into())));
            let (lock, cv) = &*latch;
            let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
            state.0 -= 1;
            if let Err(e) = result {
                state.1.get_or_insert(e);
            }
            cv.notify_all();
        };
        match pool {
            Ok(pool) => pool.spawn(work),
            Err(_) => work(),
        }
    }
    let (lock, cv) = &*latch;
    let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
    while state.0 > 0 {
        state = cv.wait(state).unwrap_or_else(|p| p.into_inner());
    }
    match state.1.take() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sums slice `part` of `parts` of every tensor over all replicas into every
/// replica's output, by the replicas' dtype.
///
/// # Safety
/// As for [`reduce_typed`].
unsafe fn reduce_part(replicas: &[Replica], part: usize, parts: usize, scale: f64) -> Result<()> {
    // SAFETY: in every arm `T` is the element type of the replicas' dtype
    // (all replicas agree on it, checked by `join`); the rest is this
    // function's contract.
    unsafe {
        match replicas[0].dtype {
            DType::F32 => reduce_typed::<f32>(replicas, part, parts, scale),
            DType::F64 => reduce_typed::<f64>(replicas, part, parts, scale),
            DType::F16 => reduce_typed::<f16>(replicas, part, parts, scale),
            DType::BF16 => reduce_typed::<bf16>(replicas, part, parts, scale),
            other => Err(Error::Unimplemented(format!("TfaAllReduce: dtype {other}"))),
        }
    }
}

/// Sums elements `[len * part / parts, len * (part + 1) / parts)` of every
/// tensor over all replicas into every replica's output.
///
/// # Safety
/// Every replica's tensors must be live, of element type `T`, and agree in
/// count and element counts with `replicas[0]` (as `join` checks); nothing
/// else may access the outputs' slice `part` meanwhile (the calls for
/// different parts run at the same time and touch disjoint slices).
unsafe fn reduce_typed<T: Widen>(
    replicas: &[Replica],
    part: usize,
    parts: usize,
    scale: f64,
) -> Result<()> {
    let api = api()?;
    for k in 0..replicas[0].tensors.len() {
        let len = replicas[0].tensors[k].2;
        let (lo, hi) = (len * part / parts, len * (part + 1) / parts);
        if lo == hi {
            continue;
        }
        let inputs: Vec<&[T]> = replicas
            .iter()
            .map(|r| {
                // SAFETY: the input is live with `len` elements of `T` (this
                // function's contract), so `[lo, hi)` lies inside it; inputs
                // are never written.
                unsafe {
                    let p = api.TF_TensorData(r.tensors[k].0) as *const T;
                    std::slice::from_raw_parts(p.add(lo), hi - lo)
                }
            })
            .collect();
        let mut outputs: Vec<&mut [T]> = replicas
            .iter()
            .map(|r| {
                // SAFETY: the output is live with `len` elements of `T`, a
                // fresh TF_AllocateOutput buffer (so no input aliases it), and
                // slice `[lo, hi)` is this call's alone (this function's
                // contract).
                unsafe {
                    let p = api.TF_TensorData(r.tensors[k].1) as *mut T;
                    std::slice::from_raw_parts_mut(p.add(lo), hi - lo)
                }
            })
            .collect();
        reduce_into(&inputs, &mut outputs, scale);
    }
    Ok(())
}

/// One background thread fails meetings that never fill (a replica failed
/// before reaching the all-reduce, or a graph that runs on some NPUs only).
fn watchdog() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let limit = timeout();
        let _ = std::thread::Builder::new()
            .name("tfa-allreduce-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(500).min(limit));
                let expired: Vec<(i64, Meeting)> = {
                    let mut all = meetings().lock().unwrap_or_else(|p| p.into_inner());
                    let keys: Vec<i64> = all
                        .iter()
                        .filter(|(_, m)| m.since.elapsed() >= limit)
                        .map(|(k, _)| *k)
                        .collect();
                    keys.into_iter()
                        .filter_map(|k| all.remove(&k).map(|m| (k, m)))
                        .collect()
                };
                for (key, m) in expired {
                    let arrived: Vec<String> = m
                        .replicas
                        .iter()
                        .map(|r| format!("NPU:{}", r.device))
                        .collect();
                    m.outcome.publish(Err(Error::DeadlineExceeded(format!(
                        "TfaAllReduce instance {key}: only {} of {} replicas ({}) arrived within \
                         {:.0} s (TFA_ALLREDUCE_TIMEOUT); did another replica fail?",
                        m.replicas.len(),
                        m.size,
                        arrived.join(", "),
                        limit.as_secs_f64()
                    ))));
                }
            });
    });
}

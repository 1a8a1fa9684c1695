//! TF_InitKernel: registers one TensorFlow kernel per op and type combination
//! of the op table, and runs them through `TfOpContext`, the `OpContext` over
//! TensorFlow's `TF_OpKernelContext`.
//!
//! The `unsafe extern "C" fn`s `create`, `compute` and `delete` are the
//! kernel callbacks given to `TF_NewKernelBuilder`; TensorFlow calls them with
//! a live construction or kernel context for the duration of the call and
//! with the pointer `create` returned (see `tensorflow/c/kernels.h`). That is
//! the contract their `SAFETY` comments refer to.

use crate::counters;
use crate::device::platform::DEVICE_TYPE;
use crate::device::{get as device, Npu};
use crate::ffi::status::{check, guard, panic_message, quiet, set, Status};
use crate::ffi::*;
use std::cell::RefCell;
use std::ffi::{c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tfa_core::shape::fmt_shape;
use tfa_core::{DType, Error, Result, TensorMut, TensorView};
use tfa_kernels::host::cast::round_f32_to;
use tfa_ops::{precision, AttrKind, AttrValue, Attrs, Backend, KernelFn, OpContext};

mod context;
use context::TfOpContext;

/// What TensorFlow keeps per kernel instance (one per graph node).
struct KernelState {
    index: usize,
    kernel: KernelFn,
    attrs: Attrs,
    node: String,
    op: &'static str,
    /// The node's first type attribute (its graph dtype), for precision modes.
    dtype: Option<DType>,
    /// Table indices of the ops a `_TfaFused` node stands for (its
    /// `fused_ops`): their kernel counts go up with it, so `kernel_counts()`
    /// still answers "did a Conv2D, a Relu... run on the NPU".
    fused: Vec<usize>,
    /// How long this node's last run took (ns; `u64::MAX` before the first):
    /// a short kernel runs on TensorFlow's calling thread (see `compute`).
    last_ns: AtomicU64,
}

/// Kernels that took less than this last time run on TensorFlow's calling
/// thread rather than in the NPU's thread pool: handing a job to the pool and
/// waking the caller costs 10-65 us (a one-off program on a 2-core VM: 13 us
/// back to back, 50-65 us once the pool has idled for 100 us), much of a
/// recurrent cell's step, whose kernels take 20-400 us. If one grows it is
/// measured again and goes back to the pool. An inline kernel that splits
/// its work does so on rayon's global pool, sized like the NPU's
/// (`device::all`), so that it plans the same partial sums, and gives the
/// same bits, either way; a one-NPU process runs its pool kernels there too
/// (`Npu::install`), so both kinds keep the same threads awake.
/// Measured on that VM (Xeon model 106), `benches/suite.py` alternating
/// three times with the build before (20 us, a pool of the NPU's own):
/// ratio to TF CPU of the 2-layer LSTM(256) inference 0.68-0.73 ->
/// 0.74-0.77, its training step 0.60-0.69 -> 0.72-0.75, EfficientNetB0 and
/// ResNet50 b1 within noise. With the two pools apart, 1 ms here cost
/// ResNet50 b1 8 % (median of 30 batches in one process): the `gemm`
/// crate's threading, started outside a pool, woke the global pool's
/// workers (asleep while the NPU's pool ran the other kernels) for each of
/// its parallel loops.
const INLINE_BELOW_NS: u64 = 1_000_000;

static REGISTERED: AtomicBool = AtomicBool::new(false);

/// TensorFlow's kernel plugin entry point.
///
/// # Safety
/// Called by TensorFlow once TensorFlow's C API is loaded.
#[no_mangle]
pub unsafe extern "C" fn TF_InitKernel() {
    quiet("TF_InitKernel", (), || {
        if REGISTERED.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = crate::custom_ops::register() {
            eprintln!("tf_adapter: {e}: fused ops are unavailable");
        }
        if let Err(e) = register_all() {
            eprintln!("tf_adapter: kernel registration failed, ops will run on the host: {e}");
        }
        if let Err(e) = crate::collective::register() {
            eprintln!("tf_adapter: {e}: tf_adapter.distribute.NpuAllReduce is unavailable");
        }
        if let Err(e) = crate::host_const::register() {
            eprintln!("tf_adapter: {e}: string constants in NPU functions will run on the host");
        }
    })
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Internal(format!("name with NUL: {s}")))
}

fn register_all() -> Result<()> {
    let api = api()?;
    let status = Status::new()?;
    for def in tfa_ops::table() {
        if def.kernel(Backend::Host).is_none()
            || (crate::custom_ops::is_custom(def.name) && !crate::custom_ops::registered())
        {
            continue;
        }
        let name = cstring(def.name)?;
        let class = cstring(&format!("tfa::{}", def.name))?;
        for combo in def.registrations() {
            // SAFETY: TensorFlow copies the strings; the builder is consumed by
            // TF_RegisterKernelBuilder (or deleted on error).
            unsafe {
                let b = api.TF_NewKernelBuilder(
                    name.as_ptr(),
                    DEVICE_TYPE.as_ptr(),
                    Some(create),
                    Some(compute),
                    Some(delete),
                );
                for (attr, dt) in &combo {
                    let a = cstring(attr)?;
                    api.TF_KernelBuilder_TypeConstraint(b, a.as_ptr(), dt.as_tf(), status.0);
                    if let Err(e) = check(status.0) {
                        api.TF_DeleteKernelBuilder(b);
                        return Err(e.context(format!("{} {attr}={dt}", def.name)));
                    }
                }
                for arg in def.host_memory_for(&combo) {
                    let a = cstring(arg)?;
                    api.TF_KernelBuilder_HostMemory(b, a.as_ptr());
                }
                api.TF_RegisterKernelBuilder(class.as_ptr(), b, status.0);
                check(status.0).map_err(|e| e.context(format!("registering {}", def.name)))?;
            }
        }
    }
    Ok(())
}

/// Field 1 (`name`) and 2 (`op`) of a serialized NodeDef. Read by hand: two
/// string fields do not justify generating TensorFlow's protos here.
fn node_name_and_op(mut buf: &[u8]) -> Option<(String, String)> {
    fn varint(buf: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = buf.split_first()?;
            *buf = rest;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let (mut name, mut op) = (None, None);
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..)?,
            5 => buf = buf.get(4..)?,
            2 => {
                let len = varint(&mut buf)? as usize;
                let field = buf.get(..len)?;
                buf = &buf[len..];
                match key >> 3 {
                    1 => name = Some(String::from_utf8_lossy(field).into_owned()),
                    2 => op = Some(String::from_utf8_lossy(field).into_owned()),
                    _ => {}
                }
            }
            _ => return None,
        }
    }
    Some((name?, op?))
}

/// A `shape` attribute, read from the serialized NodeDef: TensorFlow's C API
/// has no getter for shape attributes.
fn shape_attr(nodedef: &[u8], name: &str) -> Result<AttrValue> {
    use tfa_proto::{attr_value, Message, NodeDef};
    let n = NodeDef::decode(nodedef)
        .map_err(|e| Error::Internal(format!("cannot decode the kernel's NodeDef: {e}")))?;
    match n.attr.get(name).and_then(|v| v.value.as_ref()) {
        Some(attr_value::Value::Shape(s)) => Ok(AttrValue::Shape(
            (!s.unknown_rank).then(|| s.dim.iter().map(|d| d.size).collect()),
        )),
        _ => Err(Error::InvalidArgument(format!(
            "NodeDef has no shape attribute '{name}'"
        ))),
    }
}

/// The `fused_ops` list of a `_TfaFused` NodeDef (empty when absent).
fn fused_ops(nodedef: &[u8]) -> Vec<String> {
    use tfa_proto::{attr_value, Message, NodeDef};
    let Ok(n) = NodeDef::decode(nodedef) else {
        return Vec::new();
    };
    match n.attr.get("fused_ops").and_then(|v| v.value.as_ref()) {
        Some(attr_value::Value::List(l)) => {
            l.s.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Reads attribute `name` of the kernel under construction as a `kind`.
///
/// # Safety
/// `ctx` must be the live `TF_OpKernelConstruction` TensorFlow passed to
/// `create`, and `st` a live status.
unsafe fn read_attr(
    api: &TfApi,
    ctx: *mut TF_OpKernelConstruction,
    name: &'static str,
    kind: AttrKind,
    st: &Status,
) -> Result<AttrValue> {
    let c = cstring(name)?;
    let v = match kind {
        AttrKind::Bool => {
            let mut v = 0u8;
            // SAFETY: `ctx` and `st` are live (this function's contract); `c`
            // is a NUL-terminated name and `v` a local the call writes.
            unsafe { api.TF_OpKernelConstruction_GetAttrBool(ctx, c.as_ptr(), &mut v, st.0) };
            AttrValue::Bool(v != 0)
        }
        AttrKind::Int | AttrKind::Int32 => {
            let mut v = 0i64;
            // SAFETY: as for Bool.
            unsafe { api.TF_OpKernelConstruction_GetAttrInt64(ctx, c.as_ptr(), &mut v, st.0) };
            check(st.0).map_err(|e| e.context(format!("attribute '{name}'")))?;
            kind.int_value(name, vec![v])?
        }
        AttrKind::Float => {
            let mut v = 0f32;
            // SAFETY: as for Bool.
            unsafe { api.TF_OpKernelConstruction_GetAttrFloat(ctx, c.as_ptr(), &mut v, st.0) };
            AttrValue::Float(v)
        }
        AttrKind::Type => {
            let mut v = 0u32;
            // SAFETY: as for Bool.
            unsafe { api.TF_OpKernelConstruction_GetAttrType(ctx, c.as_ptr(), &mut v, st.0) };
            check(st.0)?;
            AttrValue::Type(DType::from_tf(v).ok_or_else(|| {
                Error::Unimplemented(format!(
                    "attribute {name}: dtype {v} is not supported on NPU"
                ))
            })?)
        }
        AttrKind::Shape => {
            return Err(Error::Internal(format!(
                "attribute {name}: shape attributes are read from the NodeDef"
            )))
        }
        AttrKind::String | AttrKind::IntList | AttrKind::Int32List => {
            let (mut list, mut total) = (0i32, 0i32);
            // SAFETY: as for Bool; `list` and `total` are locals the call writes.
            unsafe {
                api.TF_OpKernelConstruction_GetAttrSize(
                    ctx,
                    c.as_ptr(),
                    &mut list,
                    &mut total,
                    st.0,
                )
            };
            check(st.0)?;
            if kind == AttrKind::String {
                let mut buf = vec![0u8; total.max(0) as usize];
                // SAFETY: as for Bool; TensorFlow writes at most `buf.len()`
                // bytes into `buf`.
                unsafe {
                    api.TF_OpKernelConstruction_GetAttrString(
                        ctx,
                        c.as_ptr(),
                        buf.as_mut_ptr() as *mut _,
                        buf.len(),
                        st.0,
                    )
                };
                AttrValue::String(String::from_utf8_lossy(&buf).into_owned())
            } else {
                let mut vals = vec![0i64; list.max(0) as usize];
                // SAFETY: as for Bool; TensorFlow writes at most `list`
                // elements (none when it is negative), and `vals` holds
                // `list.max(0)`.
                unsafe {
                    api.TF_OpKernelConstruction_GetAttrInt64List(
                        ctx,
                        c.as_ptr(),
                        vals.as_mut_ptr(),
                        list,
                        st.0,
                    )
                };
                check(st.0).map_err(|e| e.context(format!("attribute '{name}'")))?;
                kind.int_value(name, vals)?
            }
        }
    };
    check(st.0).map_err(|e| e.context(format!("attribute '{name}'")))?;
    Ok(v)
}

/// Builds the state of one kernel instance from its NodeDef and attributes.
///
/// # Safety
/// `ctx` must be the live `TF_OpKernelConstruction` TensorFlow passed to
/// `create`, and `st` a live status.
unsafe fn construct(ctx: *mut TF_OpKernelConstruction, st: &Status) -> Result<KernelState> {
    let api = api()?;
    // SAFETY: `ctx` and `st` are live (this function's contract).
    let nd = unsafe { api.TF_OpKernelConstruction_GetNodeDef(ctx, st.0) };
    check(st.0)?;
    // SAFETY: `nd` is null or the TF_Buffer TensorFlow just returned, which we
    // own; its `data` holds `length` bytes. The bytes are copied out before
    // the buffer is deleted, once.
    let nodedef: Vec<u8> = unsafe {
        let nodedef = match nd.as_ref() {
            Some(b) if b.length > 0 && !b.data.is_null() => {
                std::slice::from_raw_parts(b.data as *const u8, b.length).to_vec()
            }
            _ => Vec::new(),
        };
        if !nd.is_null() {
            api.TF_DeleteBuffer(nd);
        }
        nodedef
    };
    let (node, op) = node_name_and_op(&nodedef)
        .ok_or_else(|| Error::Internal("cannot read the kernel's NodeDef".into()))?;
    let (index, def) = tfa_ops::find(&op)
        .ok_or_else(|| Error::Internal(format!("no NPU op declaration for {op}")))?;
    let kernel = def
        .kernel(Backend::Host)
        .ok_or_else(|| Error::Unimplemented(format!("{op} has no host kernel")))?;
    let mut attrs = Attrs::new();
    for c in def.constraints {
        // SAFETY: `ctx` and `st` are live (this function's contract).
        attrs.insert(c.attr, unsafe {
            read_attr(api, ctx, c.attr, AttrKind::Type, st)
        }?);
    }
    for a in def.attrs {
        let v = match a.kind {
            AttrKind::Shape => shape_attr(&nodedef, a.name)?,
            // SAFETY: as above.
            kind => unsafe { read_attr(api, ctx, a.name, kind, st) }?,
        };
        attrs.insert(a.name, v);
    }
    let dtype = def
        .constraints
        .first()
        .and_then(|c| attrs.dtype(c.attr).ok());
    let fused = if crate::custom_ops::is_custom(def.name) {
        fused_ops(&nodedef)
            .iter()
            .filter_map(|op| tfa_ops::find(op).map(|(i, _)| i))
            .collect()
    } else {
        Vec::new()
    };
    Ok(KernelState {
        index,
        kernel,
        attrs,
        node,
        op: def.name,
        dtype,
        fused,
        last_ns: AtomicU64::new(u64::MAX),
    })
}

unsafe extern "C" fn create(ctx: *mut TF_OpKernelConstruction) -> *mut c_void {
    let Ok(st) = Status::new() else {
        return std::ptr::null_mut();
    };
    // SAFETY: `ctx` is the live construction context TensorFlow passed (module
    // docs); `st` is live until this function returns.
    let result =
        catch_unwind(AssertUnwindSafe(|| unsafe { construct(ctx, &st) })).unwrap_or_else(|p| {
            Err(Error::Internal(format!(
                "tf_adapter internal error: {}",
                panic_message(&*p)
            )))
        });
    match result {
        Ok(state) => Box::into_raw(Box::new(state)) as *mut c_void,
        Err(e) => {
            set(st.0, &e);
            if let Ok(api) = api() {
                // SAFETY: `ctx` is live (module docs) and `st` holds the error.
                unsafe { api.TF_OpKernelConstruction_Failure(ctx, st.0) };
            }
            std::ptr::null_mut()
        }
    }
}

unsafe extern "C" fn delete(kernel: *mut c_void) {
    if !kernel.is_null() {
        // SAFETY: a non-null kernel is the Box `create` leaked with
        // Box::into_raw; TensorFlow deletes each kernel once.
        drop(unsafe { Box::from_raw(kernel as *mut KernelState) });
    }
}

/// Moves a borrow into the NPU's pool: `install` blocks the caller until the
/// closure is done, so the borrowed context outlives its use on the worker.
struct AssertSend<T>(T);
// SAFETY: used only in `compute`, to move `&TfOpContext` (not Sync: it holds
// RefCells and raw pointers) into `install`, which blocks the calling thread
// until the closure returns. So exactly one thread uses the context at a
// time, `install` orders the accesses, and the borrow outlives the use.
unsafe impl<T> Send for AssertSend<T> {}

unsafe extern "C" fn compute(kernel: *mut c_void, ctx: *mut TF_OpKernelContext) {
    // SAFETY: `kernel` is null or the KernelState `create` returned, alive
    // until `delete` (module docs).
    let Some(state) = (unsafe { (kernel as *const KernelState).as_ref() }) else {
        return;
    };
    let Ok(st) = Status::new() else { return };
    guard(st.0, (), || {
        let api = api()?;
        // SAFETY: `ctx` is the live kernel context TensorFlow passed.
        let npu = device(unsafe { api.TF_GetDeviceId(ctx) }.max(0) as usize)?;
        counters::record(state.index);
        for &i in &state.fused {
            counters::record(i);
        }
        let plan = state
            .dtype
            .map(|t| precision::plan(state.op, t))
            .unwrap_or_default();
        let native = plan.lowp.is_some() && tfa_ops::table()[state.index].native_low_precision;
        let (lowp, round_inputs) = if native {
            (plan.lowp, None)
        } else {
            (None, plan.lowp)
        };
        let tctx = TfOpContext::new(api, ctx, state, npu, lowp, round_inputs);
        // Timed from when the kernel starts, not from when it was queued:
        // with the wait for the pool included, a small kernel that once waited
        // would stay in the pool and keep waiting (measured: Identity and
        // LogicalAnd at 50-160 us per call in an LSTM's loop).
        let run = |ctx: &TfOpContext| {
            let started = std::time::Instant::now();
            let result =
                catch_unwind(AssertUnwindSafe(|| (state.kernel)(ctx))).unwrap_or_else(|p| {
                    Err(Error::Internal(format!(
                        "tf_adapter internal error: {}",
                        panic_message(&*p)
                    )))
                });
            let ns = started.elapsed().as_nanos() as u64;
            state.last_ns.store(ns, Ordering::Relaxed);
            (result, ns)
        };
        // Inline only where the pools agree in size: with 4 NPUs of 1 thread
        // on 2 cores and a global pool of 2, a column sum of 40,000 values
        // gave other bits inline than in the pool, and ResNet50's training
        // losses changed between identical runs (tests/python/test_determinism.py).
        let inline = state.last_ns.load(Ordering::Relaxed) < INLINE_BELOW_NS
            && rayon::current_num_threads() == npu.threads();
        let (result, ns) = if inline {
            run(&tctx)
        } else {
            let job = AssertSend(&tctx);
            npu.install(move || {
                let job = job;
                run(job.0)
            })?
        };
        let started = std::time::Instant::now();
        let result = result.and_then(|()| match plan.lowp {
            Some(lowp) if plan.round_outputs => tctx.round_outputs(lowp),
            _ => Ok(()),
        });
        counters::record_time(state.index, ns + started.elapsed().as_nanos() as u64);
        // The next kernel is usually a few tens of microseconds away: keep
        // the threads that will run it awake (device/warm.rs).
        npu.keep_warm();
        result.map_err(|e| match e {
            Error::Internal(m) => {
                Error::Internal(format!("{} (node '{}'): {m}", state.op, state.node))
            }
            other => other,
        })
    });
    if check(st.0).is_err() {
        if let Ok(api) = api() {
            // SAFETY: `ctx` is live (module docs) and `st` holds the error.
            unsafe { api.TF_OpKernelContext_Failure(ctx, st.0) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::node_name_and_op;

    #[test]
    fn parses_nodedef_name_and_op() {
        // name: "mm", op: "MatMul", device: "/NPU:0"
        let mut b = vec![0x0a, 2];
        b.extend_from_slice(b"mm");
        b.extend_from_slice(&[0x12, 6]);
        b.extend_from_slice(b"MatMul");
        b.extend_from_slice(&[0x22, 6]);
        b.extend_from_slice(b"/NPU:0");
        assert_eq!(node_name_and_op(&b), Some(("mm".into(), "MatMul".into())));
        assert_eq!(node_name_and_op(&b[..5]), None);
    }

    #[test]
    fn hand_registered_ops_are_the_declared_glue() {
        // `TF_InitKernel` registers these beside the table's kernels.
        let registered = [crate::collective::OP, crate::host_const::OP];
        let mut names: Vec<&str> = registered.iter().map(|c| c.to_str().unwrap()).collect();
        names.sort();
        let declared: Vec<&str> = tfa_ops::glue::GLUE.iter().map(|g| g.name).collect();
        assert_eq!(names, declared);
        for n in names {
            assert_eq!(tfa_ops::kind(n), Some(tfa_ops::Kind::PluginGlue), "{n}");
        }
    }
}

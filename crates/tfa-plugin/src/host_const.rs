//! `Const` of dtype string for the NPU, its output in host memory.
//!
//! TensorFlow has no DEVICE_DEFAULT kernel for string constants (GPUs lack one
//! too), so with soft placement off (strict mode) every `tf.debugging.assert_*`
//! inside an NPU function fails on the message constant its `Assert` takes,
//! `tf.nn.compute_average_loss` included (the loss of every distributed custom
//! loop). `Assert` itself is a DEVICE_DEFAULT kernel reading host memory; this
//! kernel hands it the constant from host memory, like TensorFlow's
//! `HostConstantOp`. It computes nothing, so it is plugin glue rather than an
//! op of the table (no accelerator kernel behind it on any backend).

use crate::device::platform::DEVICE_TYPE;
use crate::ffi::status::{check, guard, quiet, Status};
use crate::ffi::*;
use std::ffi::{c_void, CString};
use tfa_core::{Error, Result};

/// The attribute's tensor, shared with every output (TensorFlow reference-
/// counts the buffer).
struct Value(*mut TF_Tensor);

// `create`, `compute` and `delete` below are the kernel callbacks given to
// `TF_NewKernelBuilder`: TensorFlow calls them with a live construction or
// kernel context for the duration of the call, and `compute`/`delete` with the
// pointer `create` returned. Their `SAFETY` comments refer to that contract.

/// The op this glue kernel serves (`tfa_ops::glue::GLUE` names it).
pub(crate) const OP: &std::ffi::CStr = c"Const";

pub(crate) fn register() -> Result<()> {
    let api = api()?;
    let status = Status::new()?;
    let (op, class, dtype, output) = (OP, c"tfa::HostStringConst", c"dtype", c"output");
    // SAFETY: TensorFlow copies the strings; the builder is consumed by
    // TF_RegisterKernelBuilder.
    unsafe {
        let b = api.TF_NewKernelBuilder(
            op.as_ptr(),
            DEVICE_TYPE.as_ptr(),
            Some(create),
            Some(compute),
            Some(delete),
        );
        api.TF_KernelBuilder_TypeConstraint(b, dtype.as_ptr(), TF_DataType_TF_STRING, status.0);
        if let Err(e) = check(status.0) {
            api.TF_DeleteKernelBuilder(b);
            return Err(e.context("Const dtype=string"));
        }
        api.TF_KernelBuilder_HostMemory(b, output.as_ptr());
        api.TF_RegisterKernelBuilder(class.as_ptr(), b, status.0);
    }
    check(status.0).map_err(|e| e.context("registering Const (string, host memory)"))
}

unsafe extern "C" fn create(ctx: *mut TF_OpKernelConstruction) -> *mut c_void {
    let Ok(st) = Status::new() else {
        return std::ptr::null_mut();
    };
    let value = guard(st.0, std::ptr::null_mut(), || {
        let api = api()?;
        let name = CString::new("value").map_err(|e| Error::Internal(e.to_string()))?;
        let mut t: *mut TF_Tensor = std::ptr::null_mut();
        // SAFETY: `ctx` is the live construction context, `st` a live status,
        // `name` NUL-terminated and `t` a local the call writes.
        unsafe { api.TF_OpKernelConstruction_GetAttrTensor(ctx, name.as_ptr(), &mut t, st.0) };
        check(st.0)?;
        Ok(Box::into_raw(Box::new(Value(t))) as *mut c_void)
    });
    if value.is_null() {
        if let Ok(api) = api() {
            // SAFETY: `ctx` is live and `st` holds the error.
            unsafe { api.TF_OpKernelConstruction_Failure(ctx, st.0) };
        }
    }
    value
}

unsafe extern "C" fn compute(kernel: *mut c_void, ctx: *mut TF_OpKernelContext) {
    // SAFETY: `kernel` is null or the Value `create` returned, alive until
    // `delete`.
    let Some(value) = (unsafe { (kernel as *const Value).as_ref() }) else {
        return;
    };
    let Ok(st) = Status::new() else { return };
    guard(st.0, (), || {
        let api = api()?;
        // SAFETY: `ctx` is the live kernel context; `value.0` is the attribute
        // tensor, owned by the Value until `delete` (TensorFlow takes its own
        // reference to the buffer).
        unsafe { api.TF_SetOutput(ctx, 0, value.0, st.0) };
        check(st.0)
    });
    if check(st.0).is_err() {
        if let Ok(api) = api() {
            // SAFETY: `ctx` is live and `st` holds the error.
            unsafe { api.TF_OpKernelContext_Failure(ctx, st.0) };
        }
    }
}

unsafe extern "C" fn delete(kernel: *mut c_void) {
    quiet("HostStringConst delete", (), || {
        if kernel.is_null() {
            return;
        }
        // SAFETY: a non-null kernel is the Box `create` leaked with
        // Box::into_raw; TensorFlow deletes each kernel once.
        let value = unsafe { Box::from_raw(kernel as *mut Value) };
        if let (Ok(api), false) = (api(), value.0.is_null()) {
            // SAFETY: the tensor TF_OpKernelConstruction_GetAttrTensor gave
            // this kernel, deleted once, here.
            unsafe { api.TF_DeleteTensor(value.0) };
        }
    })
}

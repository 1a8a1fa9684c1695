//! Registers the OpDefs of the ops tf_adapter defines itself
//! (`tfa_ops::custom_ops()`, e.g. `_TfaFused`), before their kernels.

use crate::ffi::status::{check, guard, Status};
use crate::ffi::*;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use tfa_core::{Error, Result};

type UnknownShapeFn = unsafe extern "C" fn(*mut TF_ShapeInferenceContext, *mut TF_Status);

/// Every output's shape is unknown: the ops are written by tf_adapter's own
/// graph pass after TensorFlow's shape inference, and their kernels size
/// their outputs.
///
/// Installed with `TF_OpDefinitionBuilderSetShapeInferenceFunction`:
/// TensorFlow calls it with a live shape-inference context and status.
unsafe extern "C" fn unknown_shapes(ctx: *mut TF_ShapeInferenceContext, status: *mut TF_Status) {
    guard(status, (), || {
        // SAFETY: UnknownShapeFn is the C signature of
        // TF_ShapeInferenceContextSetUnknownShape (tensorflow/c/ops.h).
        let f: UnknownShapeFn =
            unsafe { framework_symbol(b"TF_ShapeInferenceContextSetUnknownShape\0") }?;
        // SAFETY: `ctx` and `status` are the live arguments TensorFlow passed.
        unsafe { f(ctx, status) };
        check(status)
    })
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Internal(format!("NUL in op spec {s}")))
}

static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Did the OpDefs register (so kernels may be registered and graph passes
/// may write these ops)?
pub(crate) fn registered() -> bool {
    REGISTERED.load(Ordering::SeqCst)
}

pub(crate) fn is_custom(op: &str) -> bool {
    tfa_ops::custom_ops().iter().any(|c| c.name == op)
}

pub(crate) fn register() -> Result<()> {
    let api = api()?;
    let status = Status::new()?;
    for op in tfa_ops::custom_ops() {
        let name = cstring(op.name)?;
        // SAFETY: TensorFlow copies the strings; the builder is consumed by
        // TF_RegisterOpDefinition.
        unsafe {
            let b = api.TF_NewOpDefinitionBuilder(name.as_ptr());
            for i in op.inputs {
                api.TF_OpDefinitionBuilderAddInput(b, cstring(i)?.as_ptr());
            }
            for o in op.outputs {
                api.TF_OpDefinitionBuilderAddOutput(b, cstring(o)?.as_ptr());
            }
            for a in op.attrs {
                api.TF_OpDefinitionBuilderAddAttr(b, cstring(a)?.as_ptr());
            }
            api.TF_OpDefinitionBuilderSetShapeInferenceFunction(b, Some(unknown_shapes));
            api.TF_RegisterOpDefinition(b, status.0);
            check(status.0).map_err(|e| e.context(format!("registering op {}", op.name)))?;
        }
    }
    REGISTERED.store(true, Ordering::SeqCst);
    Ok(())
}

//! TF_InitGraph: the grappler hook for the NPU.
//!
//! TensorFlow merges plugin optimizer configs process-wide: an optimizer a
//! plugin switches off is off for every graph, CPU graphs included (see
//! `PluginGraphOptimizerRegistry::GetPluginConfigs`). Switching off the
//! remapper would therefore cost the user's CPU ops their oneDNN fusions, so
//! every TensorFlow optimizer stays at its default: the remapper and layout
//! optimizer only rewrite nodes placed on CPU or GPU, and the rewrites that do
//! reach NPU nodes (the arithmetic optimizer's `x + x` -> `Mul`, add chains ->
//! `AddN`, `x * x` -> `Square`) have NPU kernels.
//!
//! One exception: the memory optimizer. When a device's estimated peak memory
//! passes half its capacity, it rewrites large `AddN`s (gradient sums) into
//! `TemporaryVariable` + ref `Assign`/`AssignAdd` + `DestroyTemporaryVariable`,
//! ops a plugin cannot implement (TensorFlow 2.21's wheel exports no C API for
//! temporary or ref variables), so training graphs would fail with "No
//! registered 'Assign' OpKernel for 'NPU' devices". It is switched off; CPU
//! graphs lose nothing by default (the rewrite needs a known device memory
//! size, recomputation and swapping are opt-in or GPU-only).
//!
//! The optimizer itself returns the graph unchanged for now; the precision
//! modes are its next job.

use crate::device::platform::DEVICE_TYPE;
use crate::ffi::status::guard;
use crate::ffi::*;
use crate::struct_size;
use std::ffi::c_void;
use tfa_core::Error;

/// TensorFlow's graph-optimizer plugin entry point.
///
/// # Safety
/// Called by TensorFlow with valid `params` and `status`.
#[no_mangle]
pub unsafe extern "C" fn TF_InitGraph(
    params: *mut TP_OptimizerRegistrationParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        let p = params
            .as_mut()
            .ok_or_else(|| Error::Internal("null optimizer params".into()))?;
        p.struct_size = struct_size!(TP_OptimizerRegistrationParams, optimizer);
        p.major_version = GO_MAJOR as i32;
        p.minor_version = GO_MINOR as i32;
        p.patch_version = GO_PATCH as i32;
        p.device_type = DEVICE_TYPE.as_ptr();
        let configs = p
            .optimizer_configs
            .as_mut()
            .ok_or_else(|| Error::Internal("null optimizer configs".into()))?;
        configs.struct_size = struct_size!(TP_OptimizerConfigs, scoped_allocator_optimization);
        configs.memory_optimization = TF_TriState_TF_TriState_Off;
        let opt = p
            .optimizer
            .as_mut()
            .ok_or_else(|| Error::Internal("null TP_Optimizer".into()))?;
        opt.struct_size = struct_size!(TP_Optimizer, destroy_func);
        opt.create_func = Some(create_optimizer);
        opt.optimize_func = Some(optimize);
        opt.destroy_func = Some(destroy_optimizer);
        Ok(())
    })
}

unsafe extern "C" fn create_optimizer() -> *mut c_void {
    std::ptr::null_mut()
}

unsafe extern "C" fn destroy_optimizer(_: *mut c_void) {}

unsafe extern "C" fn free_buffer(data: *mut c_void, _len: usize) {
    libc::free(data)
}

/// Copies the serialized GraphDef to the output buffer unchanged.
unsafe extern "C" fn optimize(
    _: *mut c_void,
    graph: *const TF_Buffer,
    _item: *const TF_GrapplerItem,
    out: *mut TF_Buffer,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        let g = graph
            .as_ref()
            .ok_or_else(|| Error::Internal("null graph buffer".into()))?;
        let o = out
            .as_mut()
            .ok_or_else(|| Error::Internal("null output buffer".into()))?;
        let data = libc::malloc(g.length.max(1));
        if data.is_null() {
            return Err(Error::ResourceExhausted(
                "no memory to copy the graph".into(),
            ));
        }
        if g.length > 0 {
            std::ptr::copy_nonoverlapping(g.data as *const u8, data as *mut u8, g.length);
        }
        o.data = data;
        o.length = g.length;
        o.data_deallocator = Some(free_buffer);
        Ok(())
    })
}

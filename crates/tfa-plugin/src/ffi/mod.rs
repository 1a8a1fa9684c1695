//! TensorFlow's C API, resolved at run time from the already loaded
//! `libtensorflow_framework.so.2` (dlopen RTLD_NOLOAD). Linking against it would
//! make `pip install .` need TensorFlow at build time; resolving it lets the
//! wheel build anywhere and keeps `cargo test` free of TensorFlow.

#[allow(clippy::all, unsafe_op_in_unsafe_fn)]
mod bindings;
pub use bindings::*;

pub mod status;

use std::sync::OnceLock;
use tfa_core::{Error, Result};

const FRAMEWORK: &str = "libtensorflow_framework.so.2";

fn load() -> Result<TfApi, String> {
    // SAFETY: RTLD_NOLOAD only finds a library already in the process; it runs
    // no initialisers.
    let lib = unsafe {
        libloading::os::unix::Library::open(Some(FRAMEWORK), libc::RTLD_NOW | libc::RTLD_NOLOAD)
    }
    .map_err(|e| {
        format!(
            "{FRAMEWORK} is not loaded in this process ({e}); load tf_adapter through TensorFlow"
        )
    })?;
    // SAFETY: symbol types come from TensorFlow's own headers (bindgen).
    let api = unsafe { TfApi::from_library(lib) }.map_err(|e| e.to_string())?;
    let required = [
        ("TF_NewStatus", api.TF_NewStatus.is_ok()),
        ("TF_SetStatus", api.TF_SetStatus.is_ok()),
        ("TF_NewKernelBuilder", api.TF_NewKernelBuilder.is_ok()),
        (
            "TF_RegisterKernelBuilder",
            api.TF_RegisterKernelBuilder.is_ok(),
        ),
        ("TF_GetInput", api.TF_GetInput.is_ok()),
        ("TF_AllocateOutput", api.TF_AllocateOutput.is_ok()),
        (
            "TF_ForwardInputOrAllocateOutput",
            api.TF_ForwardInputOrAllocateOutput.is_ok(),
        ),
        (
            "TF_OpKernelConstruction_GetNodeDef",
            api.TF_OpKernelConstruction_GetNodeDef.is_ok(),
        ),
        ("TF_TensorBitcastFrom", api.TF_TensorBitcastFrom.is_ok()),
        ("TF_GetDeviceId", api.TF_GetDeviceId.is_ok()),
    ];
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "TensorFlow's C API lacks {missing:?}: this TensorFlow is too old for tf_adapter"
        ));
    }
    Ok(api)
}

/// The TensorFlow C API, or why it is unavailable.
pub fn api() -> Result<&'static TfApi> {
    static API: OnceLock<Result<TfApi, String>> = OnceLock::new();
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| Error::FailedPrecondition(e.clone()))
}

/// `TF_OFFSET_OF_END(T, last_field)`: what TensorFlow expects in `struct_size`.
#[macro_export]
macro_rules! struct_size {
    ($t:ty, $field:ident) => {{
        let u = std::mem::MaybeUninit::<$t>::uninit();
        let base = u.as_ptr();
        // SAFETY: only the field's address is computed, never read.
        let field = unsafe { std::ptr::addr_of!((*base).$field) };
        fn size_of_pointee<T>(_: *const T) -> usize {
            std::mem::size_of::<T>()
        }
        (field as usize - base as usize) + size_of_pointee(field)
    }};
}

/// Looks up `name` (NUL-terminated) in `libtensorflow_framework.so.2`: for
/// the few functions the generated bindings leave out.
///
/// # Safety
/// `T` must be the symbol's true type.
pub unsafe fn framework_symbol<T: Copy>(name: &[u8]) -> Result<T> {
    static LIB: OnceLock<Result<libloading::os::unix::Library, String>> = OnceLock::new();
    let lib = LIB
        .get_or_init(|| {
            // SAFETY: RTLD_NOLOAD only finds a library already in the process.
            unsafe {
                libloading::os::unix::Library::open(
                    Some(FRAMEWORK),
                    libc::RTLD_NOW | libc::RTLD_NOLOAD,
                )
            }
            .map_err(|e| format!("{FRAMEWORK} is not loaded: {e}"))
        })
        .as_ref()
        .map_err(|e| Error::FailedPrecondition(e.clone()))?;
    lib.get::<T>(name).map(|s| *s).map_err(|e| {
        Error::FailedPrecondition(format!(
            "{}: {e}",
            String::from_utf8_lossy(&name[..name.len().saturating_sub(1)])
        ))
    })
}

/// `libtensorflow_cc.so.2`, where TensorFlow keeps the C API functions that
/// the framework library lacks (`TF_GetAllOpList`, the grappler item
/// accessors), opened once with RTLD_NOLOAD.
fn cc_lib() -> Result<&'static libloading::os::unix::Library> {
    const CC: &str = "libtensorflow_cc.so.2";
    static LIB: OnceLock<Result<libloading::os::unix::Library, String>> = OnceLock::new();
    LIB.get_or_init(|| {
        // SAFETY: RTLD_NOLOAD only finds a library already in the process.
        unsafe { libloading::os::unix::Library::open(Some(CC), libc::RTLD_NOW | libc::RTLD_NOLOAD) }
            .map_err(|e| format!("{CC} is not loaded: {e}"))
    })
    .as_ref()
    .map_err(|e| Error::FailedPrecondition(e.clone()))
}

/// Looks up `name` (NUL-terminated) in `libtensorflow_cc.so.2`.
///
/// # Safety
/// `T` must be the symbol's true type.
unsafe fn cc_symbol<T: Copy>(name: &[u8]) -> Result<T> {
    let lib = cc_lib()?;
    lib.get::<T>(name).map(|s| *s).map_err(|e| {
        Error::FailedPrecondition(format!(
            "{}: {e}",
            String::from_utf8_lossy(&name[..name.len().saturating_sub(1)])
        ))
    })
}

type ListSizeFn =
    unsafe extern "C" fn(*const TF_GrapplerItem, *mut i32, *mut usize, *mut TF_Status);
type ListFn = unsafe extern "C" fn(
    *const TF_GrapplerItem,
    *mut *mut std::os::raw::c_char,
    *mut usize,
    i32,
    *mut std::ffi::c_void,
    usize,
    *mut TF_Status,
);

/// The names of the nodes grappler must preserve in `item` (feeds, fetches,
/// keep ops: `TF_GetNodesToPreserveList`).
///
/// # Safety
/// `item` is the live grappler item TensorFlow passed to the optimizer.
pub unsafe fn nodes_to_preserve(item: *const TF_GrapplerItem) -> Result<Vec<String>> {
    if item.is_null() {
        return Ok(Vec::new());
    }
    let size: ListSizeFn = cc_symbol(b"TF_GetNodesToPreserveListSize\0")?;
    let list: ListFn = cc_symbol(b"TF_GetNodesToPreserveList\0")?;
    let st = status::Status::new()?;
    let mut n = 0i32;
    let mut storage_size = 0usize;
    size(item, &mut n, &mut storage_size, st.0);
    status::check(st.0)?;
    let count = usize::try_from(n).unwrap_or(0);
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut values: Vec<*mut std::os::raw::c_char> = vec![std::ptr::null_mut(); count];
    let mut lengths = vec![0usize; count];
    let mut storage = vec![0u8; storage_size.max(1)];
    list(
        item,
        values.as_mut_ptr(),
        lengths.as_mut_ptr(),
        n,
        storage.as_mut_ptr() as *mut std::ffi::c_void,
        storage_size,
        st.0,
    );
    status::check(st.0)?;
    let base = storage.as_ptr() as usize;
    Ok(values
        .iter()
        .zip(&lengths)
        .filter_map(|(&v, &len)| {
            let off = (v as usize).checked_sub(base)?;
            let bytes = storage.get(off..off.checked_add(len)?)?;
            Some(String::from_utf8_lossy(bytes).into_owned())
        })
        .collect())
}

/// Every op registered with TensorFlow, as a serialized `OpList`
/// (`TF_GetAllOpList`). That function lives in `libtensorflow_cc.so.2`, not
/// in the framework library, so it is resolved separately (RTLD_NOLOAD).
pub fn all_op_list() -> Result<Vec<u8>> {
    let api = api()?;
    // SAFETY: `TF_Buffer* TF_GetAllOpList(void)` (tensorflow/c/c_api.h).
    let get: unsafe extern "C" fn() -> *mut TF_Buffer = unsafe { cc_symbol(b"TF_GetAllOpList\0")? };
    let delete = api
        .TF_DeleteBuffer
        .as_ref()
        .map_err(|e| Error::FailedPrecondition(format!("TF_DeleteBuffer: {e}")))?;
    // SAFETY: TensorFlow returns a buffer we own and free with TF_DeleteBuffer.
    unsafe {
        let buf = get();
        let b = buf
            .as_ref()
            .ok_or_else(|| Error::Internal("TF_GetAllOpList returned null".into()))?;
        let bytes = if b.data.is_null() || b.length == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(b.data as *const u8, b.length).to_vec()
        };
        delete(buf);
        Ok(bytes)
    }
}

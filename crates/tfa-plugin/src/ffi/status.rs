//! TF_Status handling and the panic barrier every `extern "C"` entry uses.

use super::{api, TF_Status};
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tfa_core::{Code, Error, Result};

/// Writes `err` into a TensorFlow status.
pub fn set(status: *mut TF_Status, err: &Error) {
    if status.is_null() {
        eprintln!("tf_adapter: {err}");
        return;
    }
    let msg = CString::new(err.message().replace('\0', " ")).unwrap_or_default();
    match api() {
        // SAFETY: `status` is a live TF_Status owned by the caller.
        Ok(api) => unsafe { api.TF_SetStatus(status, err.code() as u32, msg.as_ptr()) },
        Err(e) => eprintln!("tf_adapter: {err} (and no TensorFlow API to report it: {e})"),
    }
}

pub fn set_ok(status: *mut TF_Status) {
    if let (false, Ok(api)) = (status.is_null(), api()) {
        // SAFETY: as in `set`.
        unsafe { api.TF_SetStatus(status, Code::Ok as u32, c"".as_ptr()) }
    }
}

/// Reads a status into a Result.
pub fn check(status: *const TF_Status) -> Result<()> {
    let api = api()?;
    // SAFETY: `status` is live; TF_Message returns a string owned by it.
    unsafe {
        let code = api.TF_GetCode(status);
        if code == 0 {
            return Ok(());
        }
        let msg = std::ffi::CStr::from_ptr(api.TF_Message(status))
            .to_string_lossy()
            .into_owned();
        Err(match code {
            3 => Error::InvalidArgument(msg),
            8 => Error::ResourceExhausted(msg),
            9 => Error::FailedPrecondition(msg),
            12 => Error::Unimplemented(msg),
            _ => Error::Internal(msg),
        })
    }
}

pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

/// Runs `f`; an error or a panic is reported through `status` and yields
/// `fallback`. No panic crosses into TensorFlow.
pub fn guard<R>(status: *mut TF_Status, fallback: R, f: impl FnOnce() -> Result<R>) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set(status, &e);
            fallback
        }
        Err(p) => {
            set(
                status,
                &Error::Internal(format!("tf_adapter internal error: {}", panic_message(&*p))),
            );
            fallback
        }
    }
}

/// For callbacks without a status: a panic is logged and yields `fallback`.
pub fn quiet<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            eprintln!(
                "tf_adapter: internal error in {what}: {}",
                panic_message(&*p)
            );
            fallback
        }
    }
}

/// An owned TF_Status.
pub struct Status(pub *mut TF_Status);

impl Status {
    pub fn new() -> Result<Status> {
        // SAFETY: plain constructor.
        Ok(Status(unsafe { api()?.TF_NewStatus() }))
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        if let Ok(api) = api() {
            // SAFETY: created by TF_NewStatus, deleted once.
            unsafe { api.TF_DeleteStatus(self.0) }
        }
    }
}

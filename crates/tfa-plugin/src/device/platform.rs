//! SE_InitPlugin: the `NPU` platform, its devices, memory, streams, events and
//! timers, for the host backend. Device memory is host memory, so copies are
//! memcpy, and kernels finish before `compute` returns: streams have no queue,
//! events are complete when recorded, and host callbacks run at once.
//!
//! # Safety of the callbacks
//!
//! Every `unsafe extern "C" fn` here is installed in one of the tables of
//! TensorFlow's StreamExecutor C API (`SP_PlatformFns`, `SP_DeviceFns`,
//! `SP_StreamExecutor`, `SP_TimerFns`; see
//! `tensorflow/c/experimental/stream_executor/stream_executor.h`) and is
//! called only by TensorFlow, which guarantees for the duration of the call:
//! - pointer arguments are null or valid (for writes where they are outputs);
//!   the callbacks check for null where it costs nothing;
//! - `SP_Device`s are those `create_device` filled in;
//! - `SP_Stream`, `SP_Event` and `SP_Timer` handles are those our `create_*`
//!   callbacks returned and have not been destroyed yet;
//! - `SP_DeviceMemoryBase`s describe blocks `allocate` returned for the same
//!   device, and a copy or fill of `size` bytes stays inside its buffers.

use super::{all as devices, get as device};
use crate::ffi::status::{guard, quiet, set_ok};
use crate::ffi::*;
use crate::{config, struct_size};
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tfa_core::{Error, Result};

pub const DEVICE_TYPE: &std::ffi::CStr = c"NPU";
/// TensorFlow requires platform names to match [A-Z][A-Z_]*.
const PLATFORM_NAME: &std::ffi::CStr = c"TF_ADAPTER";

static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Has TensorFlow loaded this plugin's platform in this process?
pub fn registered() -> bool {
    REGISTERED.load(Ordering::SeqCst)
}

/// The NPU behind an SP_Device (its ordinal).
///
/// # Safety
/// `d` must be null or point to an `SP_Device` valid for reads (one that
/// TensorFlow passes to a callback).
unsafe fn npu(d: *const SP_Device) -> Result<&'static super::Npu> {
    // SAFETY: `d` is null or valid for reads (this function's contract).
    let d = unsafe { d.as_ref() }.ok_or_else(|| Error::Internal("null SP_Device".into()))?;
    device(
        usize::try_from(d.ordinal)
            .map_err(|_| Error::Internal("negative device ordinal".into()))?,
    )
}

/// TensorFlow's StreamExecutor plugin entry point.
///
/// # Safety
/// Called by TensorFlow with valid `params` and `status`.
#[no_mangle]
pub unsafe extern "C" fn SE_InitPlugin(
    params: *mut SE_PlatformRegistrationParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        config::get()?;
        devices()?;
        // SAFETY: TensorFlow passes its registration params, valid for writes
        // for this call (this function's contract); null is an error.
        let p = unsafe { params.as_mut() }
            .ok_or_else(|| Error::Internal("null registration params".into()))?;
        p.major_version = SE_MAJOR as i32;
        p.minor_version = SE_MINOR as i32;
        p.patch_version = SE_PATCH as i32;
        // SAFETY: `platform` is TensorFlow's SP_Platform, owned by it and valid
        // for writes during registration; null is an error.
        let platform = unsafe { p.platform.as_mut() }
            .ok_or_else(|| Error::Internal("null SP_Platform".into()))?;
        platform.struct_size = struct_size!(SP_Platform, force_memory_growth);
        platform.name = PLATFORM_NAME.as_ptr();
        platform.type_ = DEVICE_TYPE.as_ptr();
        platform.supports_unified_memory = 0;
        // Our own allocator does the accounting and caching (see memory.rs).
        platform.use_bfc_allocator = 0;
        platform.force_memory_growth = 0;
        // SAFETY: as for `platform`: TensorFlow's SP_PlatformFns, valid for
        // writes during registration; null is an error.
        let fns = unsafe { p.platform_fns.as_mut() }
            .ok_or_else(|| Error::Internal("null SP_PlatformFns".into()))?;
        fns.struct_size = struct_size!(SP_PlatformFns, destroy_timer_fns);
        fns.get_device_count = Some(get_device_count);
        fns.create_device = Some(create_device);
        fns.destroy_device = Some(destroy_device);
        fns.create_device_fns = Some(create_device_fns);
        fns.destroy_device_fns = Some(destroy_device_fns);
        fns.create_stream_executor = Some(create_stream_executor);
        fns.destroy_stream_executor = Some(destroy_stream_executor);
        fns.create_timer_fns = Some(create_timer_fns);
        fns.destroy_timer_fns = Some(destroy_timer_fns);
        p.destroy_platform = Some(destroy_platform);
        p.destroy_platform_fns = Some(destroy_platform_fns);
        REGISTERED.store(true, Ordering::SeqCst);
        Ok(())
    })
}

unsafe extern "C" fn destroy_platform(_: *mut SP_Platform) {}
unsafe extern "C" fn destroy_platform_fns(_: *mut SP_PlatformFns) {}

unsafe extern "C" fn get_device_count(
    _: *const SP_Platform,
    count: *mut c_int,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        let n = devices()?.len() as c_int;
        // SAFETY: `count` is TensorFlow's output argument, valid for writes
        // (module contract).
        unsafe { *count = n };
        Ok(())
    })
}

unsafe extern "C" fn create_device(
    _: *const SP_Platform,
    params: *mut SE_CreateDeviceParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: TensorFlow's SE_CreateDeviceParams, valid for the call
        // (module contract); null is an error.
        let p = unsafe { params.as_mut() }
            .ok_or_else(|| Error::Internal("null device params".into()))?;
        // SAFETY: the SP_Device TensorFlow asks us to fill, valid for writes
        // for the call; null is an error.
        let d =
            unsafe { p.device.as_mut() }.ok_or_else(|| Error::Internal("null SP_Device".into()))?;
        device(p.ordinal as usize)?;
        d.struct_size = struct_size!(SP_Device, pci_bus_id);
        d.ordinal = p.ordinal;
        d.device_handle = std::ptr::null_mut();
        d.hardware_name = c"tf_adapter NPU (host backend)".as_ptr();
        d.device_vendor = c"tf_adapter".as_ptr();
        d.pci_bus_id = std::ptr::null();
        Ok(())
    })
}

unsafe extern "C" fn destroy_device(_: *const SP_Platform, _: *mut SP_Device) {}

unsafe extern "C" fn create_device_fns(
    _: *const SP_Platform,
    params: *mut SE_CreateDeviceFnsParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: TensorFlow's SE_CreateDeviceFnsParams, valid for the call
        // (module contract); null is an error.
        let p = unsafe { params.as_mut() }
            .ok_or_else(|| Error::Internal("null device fns params".into()))?;
        // SAFETY: the SP_DeviceFns TensorFlow asks us to fill, valid for
        // writes for the call; null is an error.
        let f = unsafe { p.device_fns.as_mut() }
            .ok_or_else(|| Error::Internal("null SP_DeviceFns".into()))?;
        f.struct_size = struct_size!(SP_DeviceFns, get_gflops);
        f.get_numa_node = Some(get_numa_node);
        f.get_memory_bandwidth = Some(get_memory_bandwidth);
        f.get_gflops = Some(get_gflops);
        Ok(())
    })
}

unsafe extern "C" fn destroy_device_fns(_: *const SP_Platform, _: *mut SP_DeviceFns) {}
unsafe extern "C" fn get_numa_node(_: *const SP_Device) -> i32 {
    -1
}
unsafe extern "C" fn get_memory_bandwidth(_: *const SP_Device) -> i64 {
    // Bytes/s; an order of magnitude for one socket, used only by cost models.
    20_000_000_000
}
unsafe extern "C" fn get_gflops(_: *const SP_Device) -> f64 {
    100.0
}

unsafe extern "C" fn create_stream_executor(
    _: *const SP_Platform,
    params: *mut SE_CreateStreamExecutorParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: TensorFlow's SE_CreateStreamExecutorParams, valid for the
        // call (module contract); null is an error.
        let p = unsafe { params.as_mut() }
            .ok_or_else(|| Error::Internal("null stream executor params".into()))?;
        // SAFETY: the SP_StreamExecutor TensorFlow asks us to fill, valid for
        // writes for the call; null is an error.
        let se = unsafe { p.stream_executor.as_mut() }
            .ok_or_else(|| Error::Internal("null SP_StreamExecutor".into()))?;
        se.struct_size = struct_size!(SP_StreamExecutor, host_callback);
        se.allocate = Some(allocate);
        se.deallocate = Some(deallocate);
        se.host_memory_allocate = Some(host_memory_allocate);
        se.host_memory_deallocate = Some(host_memory_deallocate);
        se.unified_memory_allocate = None;
        se.unified_memory_deallocate = None;
        se.get_allocator_stats = Some(get_allocator_stats);
        se.device_memory_usage = Some(device_memory_usage);
        se.create_stream = Some(create_stream);
        se.destroy_stream = Some(destroy_stream);
        se.create_stream_dependency = Some(create_stream_dependency);
        se.get_stream_status = Some(get_stream_status);
        se.create_event = Some(create_event);
        se.destroy_event = Some(destroy_event);
        se.get_event_status = Some(get_event_status);
        se.record_event = Some(record_event);
        se.wait_for_event = Some(wait_for_event);
        se.create_timer = Some(create_timer);
        se.destroy_timer = Some(destroy_timer);
        se.start_timer = Some(start_timer);
        se.stop_timer = Some(stop_timer);
        se.memcpy_dtoh = Some(memcpy_dtoh);
        se.memcpy_htod = Some(memcpy_htod);
        se.memcpy_dtod = Some(memcpy_dtod);
        se.sync_memcpy_dtoh = Some(sync_memcpy_dtoh);
        se.sync_memcpy_htod = Some(sync_memcpy_htod);
        se.sync_memcpy_dtod = Some(sync_memcpy_dtod);
        se.block_host_for_event = Some(block_host_for_event);
        se.block_host_until_done = Some(block_host_until_done);
        se.synchronize_all_activity = Some(synchronize_all_activity);
        se.mem_zero = Some(mem_zero);
        se.memset = Some(memset);
        se.memset32 = Some(memset32);
        se.host_callback = Some(host_callback);
        Ok(())
    })
}

unsafe extern "C" fn destroy_stream_executor(_: *const SP_Platform, _: *mut SP_StreamExecutor) {}

// ------------------------------------------------------------ memory ----

unsafe extern "C" fn allocate(
    d: *const SP_Device,
    size: u64,
    _space: i64,
    mem: *mut SP_DeviceMemoryBase,
) {
    quiet("allocate", (), || {
        // SAFETY: `mem` is TensorFlow's output SP_DeviceMemoryBase, null or
        // valid for writes (module contract).
        let Some(m) = (unsafe { mem.as_mut() }) else {
            return;
        };
        m.struct_size = struct_size!(SP_DeviceMemoryBase, payload);
        m.opaque = std::ptr::null_mut();
        m.size = 0;
        m.payload = 0;
        // On failure the block stays null: TensorFlow turns that into
        // ResourceExhausted in kernels (ours add the device's figures) or an
        // InternalError "Dst tensor is not initialized" in its own copies;
        // the device keeps the reason (`take_last_failure`) and Python puts
        // it into the error TensorFlow raises (strict.py), so nothing is
        // printed.
        // SAFETY: `d` is null or the SP_Device TensorFlow passes (module
        // contract).
        if let Ok(ptr) = unsafe { npu(d) }.and_then(|n| n.memory.allocate(size)) {
            m.opaque = ptr as *mut c_void;
            m.size = size;
        }
    })
}

unsafe extern "C" fn deallocate(d: *const SP_Device, mem: *mut SP_DeviceMemoryBase) {
    quiet("deallocate", (), || {
        // SAFETY: `mem` is null or TensorFlow's SP_DeviceMemoryBase, valid for
        // writes (module contract).
        let Some(m) = (unsafe { mem.as_mut() }) else {
            return;
        };
        if m.opaque.is_null() {
            return;
        }
        // SAFETY: `d` is null or the SP_Device TensorFlow passes.
        if let Ok(n) = unsafe { npu(d) } {
            // SAFETY: TensorFlow frees a block once, through the device whose
            // `allocate` returned it (its StreamExecutor owns the allocator),
            // and `opaque` is not null (checked above).
            unsafe { n.memory.free(m.opaque as *mut u8) };
        }
        m.opaque = std::ptr::null_mut();
        m.size = 0;
    })
}

unsafe extern "C" fn host_memory_allocate(_: *const SP_Device, size: u64) -> *mut c_void {
    quiet("host_memory_allocate", std::ptr::null_mut(), || {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: `p` is a valid out-pointer and ALIGN (64) is a power of two
        // and a multiple of the pointer size, as posix_memalign requires.
        if unsafe { libc::posix_memalign(&mut p, memory::ALIGN, size.max(1) as usize) } != 0 {
            return std::ptr::null_mut();
        }
        p
    })
}

use super::memory;

unsafe extern "C" fn host_memory_deallocate(_: *const SP_Device, mem: *mut c_void) {
    // SAFETY: TensorFlow hands back null or a block `host_memory_allocate`
    // returned (from posix_memalign, so free releases it), once.
    unsafe { libc::free(mem) }
}

unsafe extern "C" fn get_allocator_stats(d: *const SP_Device, stats: *mut SP_AllocatorStats) -> u8 {
    quiet("get_allocator_stats", 0, || {
        // SAFETY: `d` and `stats` are null or valid (module contract); `stats`
        // is TensorFlow's output, valid for writes.
        let (Ok(n), Some(out)) = (unsafe { (npu(d), stats.as_mut()) }) else {
            return 0;
        };
        let s = n.memory.stats();
        out.struct_size = struct_size!(SP_AllocatorStats, largest_free_block_bytes);
        out.num_allocs = s.num_allocs as i64;
        out.bytes_in_use = s.in_use as i64;
        out.peak_bytes_in_use = s.peak as i64;
        out.largest_alloc_size = s.largest_alloc as i64;
        out.has_bytes_limit = 1;
        out.bytes_limit = s.capacity as i64;
        out.bytes_reserved = (s.in_use + s.cached) as i64;
        out.peak_bytes_reserved = s.peak as i64;
        out.has_bytes_reservable_limit = 0;
        out.bytes_reservable_limit = 0;
        out.largest_free_block_bytes = s.capacity.saturating_sub(s.in_use) as i64;
        1
    })
}

unsafe extern "C" fn device_memory_usage(
    d: *const SP_Device,
    free: *mut i64,
    total: *mut i64,
) -> u8 {
    quiet("device_memory_usage", 0, || {
        // SAFETY: `d` is null or the SP_Device TensorFlow passes.
        let Ok(n) = (unsafe { npu(d) }) else { return 0 };
        let s = n.memory.stats();
        // SAFETY: `free` and `total` are TensorFlow's outputs, null or valid
        // for writes (module contract).
        let (free, total) = unsafe { (free.as_mut(), total.as_mut()) };
        if let Some(f) = free {
            *f = s.capacity.saturating_sub(s.in_use) as i64;
        }
        if let Some(t) = total {
            *t = s.capacity as i64;
        }
        1
    })
}

// ---------------------------------------------- streams, events, timers ----

/// Streams carry nothing: host-backend work is done when its call returns.
struct Stream;
struct Event;
struct Timer {
    start: Option<Instant>,
    nanos: u64,
}

unsafe extern "C" fn create_stream(
    _: *const SP_Device,
    stream: *mut SP_Stream,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: `stream` is TensorFlow's output argument, valid for writes
        // (module contract).
        unsafe { *stream = Box::into_raw(Box::new(Stream)) as SP_Stream };
        Ok(())
    })
}
unsafe extern "C" fn destroy_stream(_: *const SP_Device, stream: SP_Stream) {
    if !stream.is_null() {
        // SAFETY: a non-null stream is one `create_stream` made with
        // Box::into_raw, destroyed once (module contract).
        drop(unsafe { Box::from_raw(stream as *mut Stream) });
    }
}
unsafe extern "C" fn create_stream_dependency(
    _: *const SP_Device,
    _: SP_Stream,
    _: SP_Stream,
    status: *mut TF_Status,
) {
    set_ok(status)
}
unsafe extern "C" fn get_stream_status(_: *const SP_Device, _: SP_Stream, status: *mut TF_Status) {
    set_ok(status)
}
unsafe extern "C" fn create_event(
    _: *const SP_Device,
    event: *mut SP_Event,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: `event` is TensorFlow's output argument, valid for writes
        // (module contract).
        unsafe { *event = Box::into_raw(Box::new(Event)) as SP_Event };
        Ok(())
    })
}
unsafe extern "C" fn destroy_event(_: *const SP_Device, event: SP_Event) {
    if !event.is_null() {
        // SAFETY: a non-null event is one `create_event` made with
        // Box::into_raw, destroyed once (module contract).
        drop(unsafe { Box::from_raw(event as *mut Event) });
    }
}
unsafe extern "C" fn get_event_status(_: *const SP_Device, _: SP_Event) -> SE_EventStatus {
    SE_EventStatus_SE_EVENT_COMPLETE
}
unsafe extern "C" fn record_event(
    _: *const SP_Device,
    _: SP_Stream,
    _: SP_Event,
    status: *mut TF_Status,
) {
    set_ok(status)
}
unsafe extern "C" fn wait_for_event(
    _: *const SP_Device,
    _: SP_Stream,
    _: SP_Event,
    status: *mut TF_Status,
) {
    set_ok(status)
}
unsafe extern "C" fn block_host_for_event(
    _: *const SP_Device,
    _: SP_Event,
    status: *mut TF_Status,
) {
    set_ok(status)
}
unsafe extern "C" fn block_host_until_done(
    _: *const SP_Device,
    _: SP_Stream,
    status: *mut TF_Status,
) {
    set_ok(status)
}
unsafe extern "C" fn synchronize_all_activity(_: *const SP_Device, status: *mut TF_Status) {
    set_ok(status)
}
unsafe extern "C" fn create_timer(
    _: *const SP_Device,
    timer: *mut SP_Timer,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        let t = Box::into_raw(Box::new(Timer {
            start: None,
            nanos: 0,
        })) as SP_Timer;
        // SAFETY: `timer` is TensorFlow's output argument, valid for writes
        // (module contract).
        unsafe { *timer = t };
        Ok(())
    })
}
unsafe extern "C" fn destroy_timer(_: *const SP_Device, timer: SP_Timer) {
    if !timer.is_null() {
        // SAFETY: a non-null timer is one `create_timer` made with
        // Box::into_raw, destroyed once (module contract).
        drop(unsafe { Box::from_raw(timer as *mut Timer) });
    }
}
unsafe extern "C" fn start_timer(
    _: *const SP_Device,
    _: SP_Stream,
    timer: SP_Timer,
    status: *mut TF_Status,
) {
    // SAFETY: `timer` is null or a live Timer from `create_timer`; TensorFlow
    // does not use one timer from two threads at once.
    if let Some(t) = unsafe { (timer as *mut Timer).as_mut() } {
        t.start = Some(Instant::now());
    }
    set_ok(status)
}
unsafe extern "C" fn stop_timer(
    _: *const SP_Device,
    _: SP_Stream,
    timer: SP_Timer,
    status: *mut TF_Status,
) {
    // SAFETY: as in `start_timer`.
    if let Some(t) = unsafe { (timer as *mut Timer).as_mut() } {
        t.nanos = t.start.map(|s| s.elapsed().as_nanos() as u64).unwrap_or(0);
    }
    set_ok(status)
}
unsafe extern "C" fn create_timer_fns(
    _: *const SP_Platform,
    fns: *mut SP_TimerFns,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        // SAFETY: the SP_TimerFns TensorFlow asks us to fill, valid for writes
        // for the call (module contract); null is an error.
        let f =
            unsafe { fns.as_mut() }.ok_or_else(|| Error::Internal("null SP_TimerFns".into()))?;
        f.struct_size = struct_size!(SP_TimerFns, nanoseconds);
        f.nanoseconds = Some(timer_nanoseconds);
        Ok(())
    })
}
unsafe extern "C" fn destroy_timer_fns(_: *const SP_Platform, _: *mut SP_TimerFns) {}
unsafe extern "C" fn timer_nanoseconds(timer: SP_Timer) -> u64 {
    // SAFETY: `timer` is null or a live Timer from `create_timer` (module
    // contract).
    unsafe { (timer as *const Timer).as_ref() }
        .map(|t| t.nanos)
        .unwrap_or(0)
}

// ------------------------------------------------------------ copies ----

/// Copies `size` bytes from `src` to `dst` (which may overlap); a null buffer
/// is reported through `status`.
///
/// # Safety
/// When `size > 0` and both are non-null, `src` must be valid for reads and
/// `dst` for writes of `size` bytes. `status` is null or a live TF_Status.
unsafe fn copy(dst: *mut c_void, src: *const c_void, size: u64, status: *mut TF_Status) {
    guard(status, (), || {
        if size > 0 {
            if dst.is_null() || src.is_null() {
                return Err(Error::Internal(format!(
                    "copy of {size} bytes with a null buffer"
                )));
            }
            // SAFETY: both non-null (checked above) and valid for `size`
            // bytes (this function's contract); `copy` allows overlap.
            unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, size as usize) };
        }
        Ok(())
    })
}

/// The address of a device memory block (null for a null descriptor).
///
/// # Safety
/// `m` must be null or point to an `SP_DeviceMemoryBase` valid for reads.
unsafe fn opaque(m: *const SP_DeviceMemoryBase) -> *mut c_void {
    // SAFETY: `m` is null or valid for reads (this function's contract).
    unsafe { m.as_ref() }
        .map(|m| m.opaque)
        .unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn memcpy_dtoh(
    _: *const SP_Device,
    _: SP_Stream,
    host: *mut c_void,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    // SAFETY: TensorFlow passes valid memory descriptors and a `size` that
    // fits both buffers (module contract).
    unsafe { copy(host, opaque(src), size, status) }
}
unsafe extern "C" fn memcpy_htod(
    _: *const SP_Device,
    _: SP_Stream,
    dst: *mut SP_DeviceMemoryBase,
    host: *const c_void,
    size: u64,
    status: *mut TF_Status,
) {
    // SAFETY: TensorFlow passes valid memory descriptors and a `size` that
    // fits both buffers (module contract).
    unsafe { copy(opaque(dst), host, size, status) }
}
unsafe extern "C" fn memcpy_dtod(
    _: *const SP_Device,
    _: SP_Stream,
    dst: *mut SP_DeviceMemoryBase,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    // SAFETY: TensorFlow passes valid memory descriptors and a `size` that
    // fits both buffers (module contract).
    unsafe { copy(opaque(dst), opaque(src), size, status) }
}
unsafe extern "C" fn sync_memcpy_dtoh(
    _: *const SP_Device,
    host: *mut c_void,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    // SAFETY: TensorFlow passes valid memory descriptors and a `size` that
    // fits both buffers (module contract).
    unsafe { copy(host, opaque(src), size, status) }
}
unsafe extern "C" fn sync_memcpy_htod(
    _: *const SP_Device,
    dst: *mut SP_DeviceMemoryBase,
    host: *const c_void,
    size: u64,
    status: *mut TF_Status,
) {
    // SAFETY: TensorFlow passes valid memory descriptors and a `size` that
    // fits both buffers (module contract).
    unsafe { copy(opaque(dst), host, size, status) }
}
unsafe extern "C" fn sync_memcpy_dtod(
    _: *const SP_Device,
    dst: *mut SP_DeviceMemoryBase,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    // SAFETY: TensorFlow passes valid memory descriptors and a `size` that
    // fits both buffers (module contract).
    unsafe { copy(opaque(dst), opaque(src), size, status) }
}

/// Runs `f(address, size)` on the block `loc` describes when `size > 0`; a
/// null block is reported through `status`.
///
/// # Safety
/// `loc` must be null or a valid `SP_DeviceMemoryBase` whose block, when not
/// null, is valid for writes of `size` bytes. `status` is null or a live
/// TF_Status.
unsafe fn fill(
    loc: *mut SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
    f: impl FnOnce(*mut u8, usize),
) {
    guard(status, (), || {
        // SAFETY: `loc` is null or valid for reads (this function's contract).
        let p = unsafe { opaque(loc) } as *mut u8;
        if size > 0 {
            if p.is_null() {
                return Err(Error::Internal("memset of a null buffer".into()));
            }
            f(p, size as usize);
        }
        Ok(())
    })
}
unsafe extern "C" fn mem_zero(
    _: *const SP_Device,
    _: SP_Stream,
    loc: *mut SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    let zero = |p: *mut u8, n: usize| {
        // SAFETY: `fill` passes only the non-null block, valid for writes of
        // `n` bytes.
        unsafe { std::ptr::write_bytes(p, 0, n) }
    };
    // SAFETY: `loc` describes a block of at least `size` bytes (module
    // contract).
    unsafe { fill(loc, size, status, zero) }
}
unsafe extern "C" fn memset(
    _: *const SP_Device,
    _: SP_Stream,
    loc: *mut SP_DeviceMemoryBase,
    pattern: u8,
    size: u64,
    status: *mut TF_Status,
) {
    let set = |p: *mut u8, n: usize| {
        // SAFETY: `fill` passes only the non-null block, valid for writes of
        // `n` bytes.
        unsafe { std::ptr::write_bytes(p, pattern, n) }
    };
    // SAFETY: as in `mem_zero`.
    unsafe { fill(loc, size, status, set) }
}
unsafe extern "C" fn memset32(
    _: *const SP_Device,
    _: SP_Stream,
    loc: *mut SP_DeviceMemoryBase,
    pattern: u32,
    size: u64,
    status: *mut TF_Status,
) {
    let set = |p: *mut u8, n: usize| {
        // SAFETY: `fill` passes only the non-null block, valid for writes of
        // `n` bytes, so of `n / 4` words. Alignment is not checked: it rests
        // on Memset32's contract (a 4-byte aligned location, which every
        // block from `allocate` is: 64-byte aligned).
        let words = unsafe { std::slice::from_raw_parts_mut(p as *mut u32, n / 4) };
        words.fill(pattern);
    };
    // SAFETY: as in `mem_zero`.
    unsafe { fill(loc, size, status, set) }
}

/// Runs `callback` now: everything enqueued on a host-backend stream has
/// already happened.
unsafe extern "C" fn host_callback(
    _: *const SP_Device,
    _: SP_Stream,
    callback: SE_StatusCallbackFn,
    arg: *mut c_void,
) -> u8 {
    quiet("host_callback", 0, || {
        let (Some(cb), Ok(st)) = (callback, crate::ffi::status::Status::new()) else {
            return 0;
        };
        // SAFETY: TensorFlow's callback with the argument it gave for it;
        // `st` is a live TF_Status for the call.
        unsafe { cb(arg, st.0) };
        1
    })
}

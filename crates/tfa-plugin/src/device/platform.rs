//! SE_InitPlugin: the `NPU` platform, its devices, memory, streams, events and
//! timers, for the host backend. Device memory is host memory, so copies are
//! memcpy, and kernels finish before `compute` returns: streams have no queue,
//! events are complete when recorded, and host callbacks run at once.

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
unsafe fn npu(d: *const SP_Device) -> Result<&'static super::Npu> {
    let d = d
        .as_ref()
        .ok_or_else(|| Error::Internal("null SP_Device".into()))?;
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
        let p = params
            .as_mut()
            .ok_or_else(|| Error::Internal("null registration params".into()))?;
        p.major_version = SE_MAJOR as i32;
        p.minor_version = SE_MINOR as i32;
        p.patch_version = SE_PATCH as i32;
        let platform = p
            .platform
            .as_mut()
            .ok_or_else(|| Error::Internal("null SP_Platform".into()))?;
        platform.struct_size = struct_size!(SP_Platform, force_memory_growth);
        platform.name = PLATFORM_NAME.as_ptr();
        platform.type_ = DEVICE_TYPE.as_ptr();
        platform.supports_unified_memory = 0;
        // Our own allocator does the accounting and caching (see memory.rs).
        platform.use_bfc_allocator = 0;
        platform.force_memory_growth = 0;
        let fns = p
            .platform_fns
            .as_mut()
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
        *count = devices()?.len() as c_int;
        Ok(())
    })
}

unsafe extern "C" fn create_device(
    _: *const SP_Platform,
    params: *mut SE_CreateDeviceParams,
    status: *mut TF_Status,
) {
    guard(status, (), || {
        let p = params
            .as_mut()
            .ok_or_else(|| Error::Internal("null device params".into()))?;
        let d = p
            .device
            .as_mut()
            .ok_or_else(|| Error::Internal("null SP_Device".into()))?;
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
        let p = params
            .as_mut()
            .ok_or_else(|| Error::Internal("null device fns params".into()))?;
        let f = p
            .device_fns
            .as_mut()
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
        let p = params
            .as_mut()
            .ok_or_else(|| Error::Internal("null stream executor params".into()))?;
        let se = p
            .stream_executor
            .as_mut()
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
        let Some(m) = mem.as_mut() else { return };
        m.struct_size = struct_size!(SP_DeviceMemoryBase, payload);
        m.opaque = std::ptr::null_mut();
        m.size = 0;
        m.payload = 0;
        // On failure the block stays null: TensorFlow turns that into
        // ResourceExhausted in kernels (ours add the device's figures) or an
        // InternalError "Dst tensor is not initialized" in its own copies,
        // so the reason is also printed here.
        match npu(d).and_then(|n| n.memory.allocate(size)) {
            Ok(ptr) => {
                m.opaque = ptr as *mut c_void;
                m.size = size;
            }
            Err(e) => eprintln!("tf_adapter: {e}"),
        }
    })
}

unsafe extern "C" fn deallocate(d: *const SP_Device, mem: *mut SP_DeviceMemoryBase) {
    quiet("deallocate", (), || {
        let Some(m) = mem.as_mut() else { return };
        if m.opaque.is_null() {
            return;
        }
        if let Ok(n) = npu(d) {
            // SAFETY: TensorFlow hands back blocks that `allocate` gave it.
            n.memory.free(m.opaque as *mut u8);
        }
        m.opaque = std::ptr::null_mut();
        m.size = 0;
    })
}

unsafe extern "C" fn host_memory_allocate(_: *const SP_Device, size: u64) -> *mut c_void {
    quiet("host_memory_allocate", std::ptr::null_mut(), || {
        let mut p: *mut c_void = std::ptr::null_mut();
        if libc::posix_memalign(&mut p, memory::ALIGN, size.max(1) as usize) != 0 {
            return std::ptr::null_mut();
        }
        p
    })
}

use super::memory;

unsafe extern "C" fn host_memory_deallocate(_: *const SP_Device, mem: *mut c_void) {
    libc::free(mem)
}

unsafe extern "C" fn get_allocator_stats(d: *const SP_Device, stats: *mut SP_AllocatorStats) -> u8 {
    quiet("get_allocator_stats", 0, || {
        let (Ok(n), Some(out)) = (npu(d), stats.as_mut()) else {
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
        let Ok(n) = npu(d) else { return 0 };
        let s = n.memory.stats();
        if let Some(f) = free.as_mut() {
            *f = s.capacity.saturating_sub(s.in_use) as i64;
        }
        if let Some(t) = total.as_mut() {
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
        *stream = Box::into_raw(Box::new(Stream)) as SP_Stream;
        Ok(())
    })
}
unsafe extern "C" fn destroy_stream(_: *const SP_Device, stream: SP_Stream) {
    if !stream.is_null() {
        drop(Box::from_raw(stream as *mut Stream));
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
        *event = Box::into_raw(Box::new(Event)) as SP_Event;
        Ok(())
    })
}
unsafe extern "C" fn destroy_event(_: *const SP_Device, event: SP_Event) {
    if !event.is_null() {
        drop(Box::from_raw(event as *mut Event));
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
        *timer = Box::into_raw(Box::new(Timer {
            start: None,
            nanos: 0,
        })) as SP_Timer;
        Ok(())
    })
}
unsafe extern "C" fn destroy_timer(_: *const SP_Device, timer: SP_Timer) {
    if !timer.is_null() {
        drop(Box::from_raw(timer as *mut Timer));
    }
}
unsafe extern "C" fn start_timer(
    _: *const SP_Device,
    _: SP_Stream,
    timer: SP_Timer,
    status: *mut TF_Status,
) {
    if let Some(t) = (timer as *mut Timer).as_mut() {
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
    if let Some(t) = (timer as *mut Timer).as_mut() {
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
        let f = fns
            .as_mut()
            .ok_or_else(|| Error::Internal("null SP_TimerFns".into()))?;
        f.struct_size = struct_size!(SP_TimerFns, nanoseconds);
        f.nanoseconds = Some(timer_nanoseconds);
        Ok(())
    })
}
unsafe extern "C" fn destroy_timer_fns(_: *const SP_Platform, _: *mut SP_TimerFns) {}
unsafe extern "C" fn timer_nanoseconds(timer: SP_Timer) -> u64 {
    (timer as *const Timer)
        .as_ref()
        .map(|t| t.nanos)
        .unwrap_or(0)
}

// ------------------------------------------------------------ copies ----

unsafe fn copy(dst: *mut c_void, src: *const c_void, size: u64, status: *mut TF_Status) {
    guard(status, (), || {
        if size > 0 {
            if dst.is_null() || src.is_null() {
                return Err(Error::Internal(format!(
                    "copy of {size} bytes with a null buffer"
                )));
            }
            std::ptr::copy(src as *const u8, dst as *mut u8, size as usize);
        }
        Ok(())
    })
}

unsafe fn opaque(m: *const SP_DeviceMemoryBase) -> *mut c_void {
    m.as_ref().map(|m| m.opaque).unwrap_or(std::ptr::null_mut())
}

unsafe extern "C" fn memcpy_dtoh(
    _: *const SP_Device,
    _: SP_Stream,
    host: *mut c_void,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    copy(host, opaque(src), size, status)
}
unsafe extern "C" fn memcpy_htod(
    _: *const SP_Device,
    _: SP_Stream,
    dst: *mut SP_DeviceMemoryBase,
    host: *const c_void,
    size: u64,
    status: *mut TF_Status,
) {
    copy(opaque(dst), host, size, status)
}
unsafe extern "C" fn memcpy_dtod(
    _: *const SP_Device,
    _: SP_Stream,
    dst: *mut SP_DeviceMemoryBase,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    copy(opaque(dst), opaque(src), size, status)
}
unsafe extern "C" fn sync_memcpy_dtoh(
    _: *const SP_Device,
    host: *mut c_void,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    copy(host, opaque(src), size, status)
}
unsafe extern "C" fn sync_memcpy_htod(
    _: *const SP_Device,
    dst: *mut SP_DeviceMemoryBase,
    host: *const c_void,
    size: u64,
    status: *mut TF_Status,
) {
    copy(opaque(dst), host, size, status)
}
unsafe extern "C" fn sync_memcpy_dtod(
    _: *const SP_Device,
    dst: *mut SP_DeviceMemoryBase,
    src: *const SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
) {
    copy(opaque(dst), opaque(src), size, status)
}

unsafe fn fill(
    loc: *mut SP_DeviceMemoryBase,
    size: u64,
    status: *mut TF_Status,
    f: impl FnOnce(*mut u8, usize),
) {
    guard(status, (), || {
        let p = opaque(loc) as *mut u8;
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
    fill(loc, size, status, |p, n| std::ptr::write_bytes(p, 0, n))
}
unsafe extern "C" fn memset(
    _: *const SP_Device,
    _: SP_Stream,
    loc: *mut SP_DeviceMemoryBase,
    pattern: u8,
    size: u64,
    status: *mut TF_Status,
) {
    fill(loc, size, status, |p, n| {
        std::ptr::write_bytes(p, pattern, n)
    })
}
unsafe extern "C" fn memset32(
    _: *const SP_Device,
    _: SP_Stream,
    loc: *mut SP_DeviceMemoryBase,
    pattern: u32,
    size: u64,
    status: *mut TF_Status,
) {
    fill(loc, size, status, |p, n| {
        let words = std::slice::from_raw_parts_mut(p as *mut u32, n / 4);
        words.fill(pattern);
    })
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
        cb(arg, st.0);
        1
    })
}

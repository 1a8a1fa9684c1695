//! Device memory of one NPU on the host backend: 64-byte aligned host memory
//! with a capacity, exact accounting (current, peak) and a cache of freed
//! blocks. TensorFlow's simple allocator asks us for every tensor, so without
//! the cache each large activation would be a fresh mmap and page faults.
//!
//! Written by hand because the accounting is the point: a general-purpose
//! allocator crate cannot enforce a per-device budget or report usage.
//!
//! TensorFlow frees device memory by address alone (its simple allocator
//! passes size 0 and drops the payload), so each block carries a 64-byte
//! header with its size class in front of the address we hand out.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tfa_core::{Error, Result};

pub const ALIGN: usize = 64;
/// Bytes in front of each block: its size class and a check word.
const HEADER: usize = ALIGN;
const MAGIC: u64 = 0x7466_615f_6e70_7521; // "tfa_npu!"

/// Rounds a request to its size class: 256-byte steps up to 64 KiB, then
/// eight classes per power of two (at most 12.5% waste), so freed blocks are
/// reused by similar requests.
pub fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(1);
    if b <= 64 << 10 {
        return b.div_ceil(256) * 256;
    }
    let pow = 63 - b.leading_zeros(); // floor(log2 b)
    let step = 1u64 << (pow - 3);
    b.div_ceil(step) * step
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes held by live tensors (size classes).
    pub in_use: u64,
    pub peak: u64,
    /// Freed blocks kept for reuse (they count against the capacity too).
    pub cached: u64,
    pub capacity: u64,
    pub num_allocs: u64,
    pub largest_alloc: u64,
    pub failed_allocs: u64,
}

pub struct DeviceMemory {
    pub ordinal: usize,
    capacity: u64,
    in_use: AtomicU64,
    peak: AtomicU64,
    num_allocs: AtomicU64,
    largest: AtomicU64,
    failed: AtomicU64,
    /// size class -> free block addresses; with the byte total.
    cache: Mutex<(HashMap<u64, Vec<usize>>, u64)>,
    /// The last failed allocation's message, until Python takes it: an
    /// allocation TensorFlow makes itself (a host-to-NPU copy) fails with
    /// "Dst tensor is not initialized" and no reason, so the reason waits
    /// here for the error to be raised instead of being printed.
    last_failure: Mutex<Option<String>>,
}

fn human(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", U[i])
    }
}

impl DeviceMemory {
    pub fn new(ordinal: usize, capacity: u64) -> Self {
        DeviceMemory {
            ordinal,
            capacity,
            in_use: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            num_allocs: AtomicU64::new(0),
            largest: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cache: Mutex::new((HashMap::new(), 0)),
            last_failure: Mutex::new(None),
        }
    }

    /// Counts a failed allocation and keeps its message for `take_last_failure`.
    fn fail(&self, message: String) -> Error {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        Error::ResourceExhausted(message)
    }

    /// The message of the last failed allocation since the last call, if any.
    pub fn take_last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, (HashMap<u64, Vec<usize>>, u64)> {
        // A panic while holding the lock leaves the map consistent (every
        // mutation is a single push/pop), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The out-of-memory message: device, request, usage and capacity.
    pub fn oom_message(&self, requested: u64) -> String {
        let s = self.stats();
        format!(
            "NPU:{} out of memory: requested {} ({} bytes) with {} in use of {} capacity ({} bytes). \
             Set TFA_NPU_MEMORY to raise the capacity, use a smaller batch, or accumulate \
             gradients over micro-batches (tf_adapter.train.accumulate_gradients, or Keras \
             optimizers' gradient_accumulation_steps).",
            self.ordinal,
            human(requested),
            requested,
            human(s.in_use),
            human(s.capacity),
            s.capacity
        )
    }

    /// Allocates `bytes`, 64-byte aligned.
    pub fn allocate(&self, bytes: u64) -> Result<*mut u8> {
        let class = size_class(bytes);
        // Reserve against the capacity first; roll back on failure.
        let mut cur = self.in_use.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(class);
            if next > self.capacity {
                return Err(self.fail(self.oom_message(bytes)));
            }
            match self
                .in_use
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    break;
                }
                Err(actual) => cur = actual,
            }
        }
        self.num_allocs.fetch_add(1, Ordering::Relaxed);
        self.largest.fetch_max(bytes, Ordering::Relaxed);
        let reused = {
            let mut c = self.cache();
            let hit = c.0.get_mut(&class).and_then(|v| v.pop());
            if hit.is_some() {
                c.1 -= class;
            }
            hit
        };
        if let Some(base) = reused {
            return Ok(with_header(base as *mut u8, class));
        }
        // Keep live + cached within the capacity: trim the cache before growing.
        self.trim_cache(
            self.capacity
                .saturating_sub(self.in_use.load(Ordering::Relaxed)),
        );
        let ptr = match block_layout(class) {
            // SAFETY: the layout has a non-zero size.
            Some(layout) => unsafe { alloc(layout) },
            None => std::ptr::null_mut(),
        };
        if ptr.is_null() {
            self.in_use.fetch_sub(class, Ordering::AcqRel);
            return Err(self.fail(format!(
                "{} (the host could not provide the memory)",
                self.oom_message(bytes)
            )));
        }
        Ok(with_header(ptr, class))
    }

    /// Returns a block from `allocate`.
    ///
    /// # Safety
    /// `user` must be null or a pointer `allocate` of this device returned,
    /// not freed since.
    pub unsafe fn free(&self, user: *mut u8) {
        if user.is_null() {
            return;
        }
        // SAFETY: per the contract, `user` came from `allocate`, which wrote the
        // header in the HEADER (64, so u64-aligned) bytes in front of it; the
        // block is still ours (cached or in use), so the header is writable.
        let (ptr, class) = unsafe {
            let base = user.sub(HEADER);
            let words = base as *mut u64;
            if *words.add(1) != MAGIC {
                eprintln!(
                    "tf_adapter: NPU:{} asked to free {user:p}, which it did not allocate \
                     (or freed it already)",
                    self.ordinal
                );
                return;
            }
            // Cleared so that a second free of the same block is caught
            // above instead of caching it twice (allocate writes it again).
            *words.add(1) = 0;
            (base, *words)
        };
        self.in_use.fetch_sub(class, Ordering::AcqRel);
        let keep = {
            let mut c = self.cache();
            let room = self
                .capacity
                .saturating_sub(self.in_use.load(Ordering::Relaxed));
            if c.1 + class <= room {
                c.0.entry(class).or_default().push(ptr as usize);
                c.1 += class;
                true
            } else {
                false
            }
        };
        if !keep {
            release(ptr, class);
        }
    }

    /// Frees cached blocks until at most `limit` bytes stay cached.
    pub fn trim_cache(&self, limit: u64) {
        let mut c = self.cache();
        if c.1 <= limit {
            return;
        }
        let (map, total) = &mut *c;
        for (class, blocks) in map.iter_mut() {
            while *total > limit {
                match blocks.pop() {
                    Some(p) => {
                        release(p as *mut u8, *class);
                        *total -= *class;
                    }
                    None => break,
                }
            }
        }
        map.retain(|_, v| !v.is_empty());
    }

    pub fn stats(&self) -> MemoryStats {
        MemoryStats {
            in_use: self.in_use.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
            cached: self.cache().1,
            capacity: self.capacity,
            num_allocs: self.num_allocs.load(Ordering::Relaxed),
            largest_alloc: self.largest.load(Ordering::Relaxed),
            failed_allocs: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Sets the peak to the current usage (`tf.config.experimental.reset_memory_stats`).
    pub fn reset_peak(&self) {
        self.peak
            .store(self.in_use.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Layout of a block of `class` usable bytes plus the header.
fn block_layout(class: u64) -> Option<Layout> {
    Layout::from_size_align((class as usize).checked_add(HEADER)?, ALIGN).ok()
}

/// Writes the header at `base` and returns the address handed out.
fn with_header(base: *mut u8, class: u64) -> *mut u8 {
    // SAFETY: `base` starts a block of at least HEADER bytes, 64-byte aligned.
    unsafe {
        let words = base as *mut u64;
        *words = class;
        *words.add(1) = MAGIC;
        base.add(HEADER)
    }
}

fn release(base: *mut u8, class: u64) {
    if let Some(layout) = block_layout(class) {
        // SAFETY: `base` came from `alloc` with this same layout.
        unsafe { dealloc(base, layout) }
    }
}

impl Drop for DeviceMemory {
    fn drop(&mut self) {
        self.trim_cache(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_bound_waste() {
        for b in [
            1u64,
            255,
            256,
            257,
            65536,
            65537,
            1 << 20,
            (1 << 20) + 1,
            3_000_000_000,
        ] {
            let c = size_class(b);
            assert!(
                c >= b && (c - b) as f64 <= 0.125 * b as f64 + 256.0,
                "{b} -> {c}"
            );
        }
    }

    #[test]
    fn a_second_free_of_a_block_is_refused() {
        let m = DeviceMemory::new(0, 1 << 20);
        let p = m.allocate(1000).unwrap();
        // SAFETY: `p` came from `m.allocate`; the second free is the bug
        // under test and must be caught by the cleared header (the block
        // is cached, so its memory is still valid).
        unsafe {
            m.free(p);
            m.free(p);
        }
        assert_eq!(m.stats().in_use, 0);
        assert_eq!(m.stats().cached, size_class(1000));
        let a = m.allocate(1000).unwrap();
        let b = m.allocate(1000).unwrap();
        assert_ne!(a, b, "a block cached twice would be handed out twice");
        // SAFETY: both came from `m.allocate`, freed once each.
        unsafe {
            m.free(a);
            m.free(b);
        }
    }

    #[test]
    fn accounting_cache_and_oom() {
        let m = DeviceMemory::new(0, 1 << 20);
        let p = m.allocate(1000).unwrap();
        let c = size_class(1000);
        assert_eq!(p as usize % ALIGN, 0);
        assert_eq!(m.stats().in_use, c);
        // SAFETY: `p` came from `m.allocate` and is freed once.
        unsafe { m.free(p) };
        assert_eq!(m.stats().in_use, 0);
        assert_eq!(m.stats().cached, c);
        let q = m.allocate(1000).unwrap();
        assert_eq!(q, p, "freed block is reused");
        let e = m.allocate(2 << 20).unwrap_err();
        assert!(matches!(e, Error::ResourceExhausted(_)));
        let msg = e.to_string();
        assert!(
            msg.contains("NPU:0") && msg.contains("2097152 bytes") && msg.contains("1048576 bytes"),
            "{msg}"
        );
        // SAFETY: `q` came from `m.allocate` and is freed once.
        unsafe { m.free(q) };
        assert_eq!(m.stats().peak, c);
        m.reset_peak();
        assert_eq!(m.stats().peak, 0);
        // Cache never pushes live + cached past the capacity.
        let big = m.allocate(900 << 10).unwrap();
        assert!(m.stats().in_use + m.stats().cached <= 1 << 20);
        // SAFETY: `big` came from `m.allocate` and is freed once.
        unsafe { m.free(big) };
        assert_eq!(m.stats().in_use, 0);
    }
}

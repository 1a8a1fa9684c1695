//! Parallel loops that also serve kernels started outside every rayon pool.
//!
//! Short kernels run on the thread TensorFlow's executor calls them on,
//! outside every pool (`tfa-plugin`'s `kernels::compute`). A rayon parallel
//! iterator started there hands the whole loop to a pool worker and blocks
//! the caller until it is done: two thread wake-ups, 50-65 us on a 2-core VM
//! once the pool has idled for 100 us, as long as an LSTM cell's gate
//! arithmetic on 32x256 takes on one core. [`for_each_task`] has the caller
//! take tasks itself while helpers spawned into the pool take the rest as
//! they wake; inside a pool it is a plain parallel iterator.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::transpose::SendPtr;

thread_local! {
    /// Set while this thread runs one task's share of a parallel loop that
    /// calls other kernels (a fused program's block): their loops stay on
    /// this thread ([`Serial`]).
    static SERIAL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, keeps the element-wise loops this thread calls on it
/// (`par_chunk` gives one task): for work that is already one task of a
/// parallel loop, where splitting again would only add hand-offs.
pub(crate) struct Serial(bool);

impl Serial {
    pub(crate) fn enter() -> Serial {
        Serial(SERIAL.with(|s| s.replace(true)))
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        SERIAL.with(|s| s.set(self.0));
    }
}

/// Whether a [`Serial`] is alive on this thread.
pub(crate) fn is_serial() -> bool {
    SERIAL.with(|s| s.get())
}

/// The tasks of one [`for_each_task`] call, claimed one at a time by
/// whichever thread asks next.
struct Tasks {
    /// The caller's closure, its lifetime erased: called only for claimed
    /// tasks, and the caller returns only once every task is done.
    task: *const (dyn Fn(usize) + Sync),
    count: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
}

// SAFETY: `task` is `Sync` and only called, never moved or dropped, through
// this pointer; the counters are atomics.
unsafe impl Send for Tasks {}
// SAFETY: as above.
unsafe impl Sync for Tasks {}

impl Tasks {
    /// Runs tasks until none is left unclaimed. A panic inside a task is
    /// recorded (the task still counts as done, so the caller does not wait
    /// forever) and re-raised by the caller.
    ///
    /// # Safety
    /// `task` must be valid while any task is unclaimed or running.
    unsafe fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.count {
                return;
            }
            // SAFETY: task `i` is claimed and not done, so the caller is
            // still waiting and its closure alive (this function's contract).
            let task = unsafe { &*self.task };
            if catch_unwind(AssertUnwindSafe(|| task(i))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// Calls `task(i)` for every `i < count`, in no set order, on up to
/// `threads` threads of the current rayon pool (the global pool outside
/// every pool); returns when all are done. A task that panics panics the
/// caller, after the others have finished.
pub(crate) fn for_each_task(count: usize, threads: usize, task: impl Fn(usize) + Sync + Send) {
    if count <= 1 || threads <= 1 {
        (0..count).for_each(task);
        return;
    }
    if rayon::current_thread_index().is_some() {
        (0..count).into_par_iter().for_each(task);
        return;
    }
    let borrowed: &(dyn Fn(usize) + Sync) = &task;
    // SAFETY: only the lifetime changes (the same fat pointer); the pointer
    // is used while tasks are unclaimed or running, and this function waits
    // below until every task is done, so `task` outlives every use.
    let erased: *const (dyn Fn(usize) + Sync + 'static) =
        unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), _>(borrowed) };
    let tasks = Arc::new(Tasks {
        task: erased,
        count,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
    });
    for _ in 1..threads.min(count) {
        let helper = Arc::clone(&tasks);
        // SAFETY: a helper that starts after the last task was claimed finds
        // none and never reads `task`; the others run while the caller waits.
        rayon::spawn(move || unsafe { helper.work() });
    }
    // SAFETY: `task` lives until this function returns.
    unsafe { tasks.work() };
    let mut spins = 0u32;
    while tasks.done.load(Ordering::Acquire) < count {
        // The helpers hold tasks of tens of microseconds at most.
        if spins < 1 << 10 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    assert!(
        !tasks.panicked.load(Ordering::Relaxed),
        "a parallel kernel task panicked"
    );
}

/// Calls `f(i, chunk)` on `data` cut into chunks of `chunk` elements (the
/// last may be shorter), `i` the chunk's index, through [`for_each_task`]
/// on the current pool's threads.
pub(crate) fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let (len, chunk) = (data.len(), chunk.max(1));
    let base = SendPtr(data.as_mut_ptr());
    for_each_task(len.div_ceil(chunk), rayon::current_num_threads(), |i| {
        let start = i * chunk;
        // SAFETY: chunk `i` lies within `data` and no other task touches it;
        // `data` stays mutably borrowed until every task is done.
        let part = unsafe {
            std::slice::from_raw_parts_mut(base.get().add(start), chunk.min(len - start))
        };
        f(i, part)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task runs once, from outside the pools (the caller and helpers)
    /// and from inside one; chunks cover the slice exactly.
    #[test]
    fn every_task_runs_once() {
        for count in [0, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicUsize> = (0..count).map(|_| AtomicUsize::new(0)).collect();
            for_each_task(count, 4, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                "{count}"
            );
        }
        let pool = crate::test_pool(3);
        pool.install(|| {
            let mut v = vec![0usize; 1001];
            for_each_chunk_mut(&mut v, 64, |i, c| {
                c.iter_mut().enumerate().for_each(|(j, x)| *x = i * 64 + j)
            });
            assert!(v.iter().enumerate().all(|(i, &x)| i == x));
        });
        let mut v = vec![0usize; 1001];
        for_each_chunk_mut(&mut v, 100, |i, c| {
            c.iter_mut()
                .enumerate()
                .for_each(|(j, x)| *x += i * 100 + j + 1)
        });
        assert!(v.iter().enumerate().all(|(i, &x)| i + 1 == x));
    }

    /// A costly loop over a small tensor splits, except inside `Serial`.
    #[test]
    fn serial_keeps_loops_whole() {
        let pool = crate::test_pool(2);
        pool.install(|| {
            let (len, cost) = (8192, 8);
            assert!(crate::host::par_chunk(len, cost) < len);
            assert_eq!(crate::host::par_chunk(len, 1), len);
            {
                let _serial = Serial::enter();
                assert_eq!(crate::host::par_chunk(len, cost), len);
            }
            assert!(crate::host::par_chunk(len, cost) < len);
        });
    }

    #[test]
    fn a_panicking_task_panics_the_caller() {
        let r = catch_unwind(|| for_each_task(8, 2, |i| assert!(i != 5, "task 5")));
        assert!(r.is_err());
    }
}

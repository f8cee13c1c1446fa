//! Tiny helpers to spread independent work over the machine's cores with
//! scoped threads (no pool kept alive between calls).

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Number of worker threads to use for CPU-bound stages.
pub fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 32)
}

/// Applies `f` to every item on up to [`workers`] threads (at least 4, as
/// most uses wait on I/O); results keep input order; the first error wins.
pub fn map<T: Send + Sync, R: Send, E: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    let n = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let results: Vec<Mutex<Option<Result<R, E>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let threads = workers().max(4).min(n.max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if let Some(item) = slots[i].lock().take() {
                        *results[i].lock() = Some(f(item));
                    }
                }
            });
        }
    });
    results.into_iter().filter_map(|r| r.into_inner()).collect()
}

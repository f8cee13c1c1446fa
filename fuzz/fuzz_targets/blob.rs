//! One encrypted blob through `Repository::decode_blob`, with an arbitrary
//! claimed `uncompressed_length`.
//!
//! Input: `[claimed length: u32 LE][flags: u8][plaintext]`. Flag bit 0 marks
//! the blob compressed (`uncompressed_length = Some(claimed)`); bit 1 names
//! it by the hash of what zstd itself makes of the plaintext (so a valid
//! frame can pass the id check), else by the plaintext's hash. The plaintext
//! is encrypted with the repository key, so the MAC passes.
//!
//! A counting allocator checks that decoding never allocates (through Rust)
//! more than twice the claimed length plus a small allowance.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use vaultfs::Id;
use vaultfs::repo::{BlobType, PackedBlob};
use vaultfs_fuzz::{repo, take};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Old and new block both exist for a moment.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocation allowed beyond the claimed output (messages, zstd's Rust side).
const SLACK: usize = 256 << 10;

fuzz_target!(|data: &[u8]| {
    let repo = repo();
    let (claimed, rest) = take::<4>(data);
    let claimed = u32::from_le_bytes(claimed);
    let (flags, payload) = take::<1>(rest);
    let compressed = flags[0] & 1 != 0;
    let id = if flags[0] & 2 != 0 {
        zstd::bulk::decompress(payload, 1 << 16)
            .map(|p| Id::hash(&p))
            .unwrap_or_else(|_| Id::hash(payload))
    } else {
        Id::hash(payload)
    };
    let blob = PackedBlob {
        blob_type: BlobType::Data,
        id,
        offset: 0,
        length: u32::try_from(payload.len() + 32).expect("small input"),
        uncompressed_length: compressed.then_some(claimed),
    };
    let mut buf = repo.key().encrypt(payload);

    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let res = repo.decode_blob("fuzz blob", &blob, &mut buf);
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let bound = if compressed { 2 * claimed as usize } else { 0 } + SLACK;
    assert!(
        used <= bound,
        "decoding allocated {used} bytes for a claimed length of {claimed}"
    );

    if let Ok(out) = res {
        assert_eq!(Id::hash(&out), id, "returned bytes do not hash to the id");
        if compressed {
            assert_eq!(out.len(), claimed as usize, "length differs from the claim");
        } else {
            assert_eq!(out, payload, "uncompressed blob changed");
        }
    }
});

//! How the process asks the allocator for large blocks.
//!
//! A reload builds new snapshots (a zone's arrays, tens of megabytes for a large zone) while the
//! old ones still serve, then drops the old ones. glibc serves blocks above its mmap threshold
//! from mappings of their own, returned to the system when freed; but it raises that threshold
//! each time such a block is freed (up to 32 MiB), after which the same sizes come from the heap
//! and are never returned: every reload then adds the old snapshot's size to the resident
//! memory. Fixing the threshold at 1 MiB keeps large blocks mapped, so that resident memory after
//! a reload is what the new snapshots use.

/// Blocks of at least this many bytes get a mapping of their own.
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Fixes the allocator's mmap threshold (glibc; elsewhere nothing to do). Call once, early.
pub fn init() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes a tuning parameter of the allocator; it is safe to call
        // at any time, and at start-up nothing else allocates concurrently anyway.
        let changed = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if changed != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) refused; memory may grow across reloads");
        }
    }
}

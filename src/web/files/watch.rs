//! Change notification for the file cache (Linux inotify), so that a cached file is served
//! without a `stat` per request and an edit still shows on the very next one.
//!
//! 1. Before a file is read into the cache, every directory on its way from the root (as
//!    asked, and as its symlinks resolve) is watched for changes: writes, attributes, entries
//!    created, deleted or moved (not reads: serving a file must not wake the watch).
//! 2. The inotify descriptor sits in tokio's reactor. Before each cache lookup a request looks
//!    at its readiness, an atomic load with no system call; when events are pending it reads
//!    them all and the cache starts afresh (a new generation). An event queued before a
//!    request's bytes arrived is seen by the reactor in the same or an earlier turn, so the
//!    request sees its readiness: a change made before a request is never missed.
//! 3. An entry is kept only if no change was seen between its watches and its insertion.
//!
//! Any change clears the whole cache: sites change rarely and in bulk, and one rule is easy
//! to trust. Without a reactor (`onebox check`) or when the kernel refuses a watch (its limit
//! of watches per user), entries are checked with a `stat` per request, as before.

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::unix::AsyncFd;

/// The watch of one site's directories.
#[derive(Debug)]
pub(crate) struct Watch {
    fd: AsyncFd<OwnedFd>,
    /// Directories watched in this generation.
    dirs: Mutex<HashSet<PathBuf>>,
    /// Moves on every change seen.
    generation: AtomicU64,
}

impl Watch {
    /// A new watch; `None` outside a tokio runtime or if the kernel refuses one.
    pub fn new() -> Option<Self> {
        tokio::runtime::Handle::try_current().ok()?;
        let fd = match sys::init() {
            Ok(fd) => fd,
            Err(error) => {
                tracing::warn!(%error, "no inotify: cached files are checked with stat per request");
                return None;
            }
        };
        Some(Self {
            fd: sys::register(fd)?,
            dirs: Mutex::new(HashSet::new()),
            generation: AtomicU64::new(0),
        })
    }

    /// The current generation (read it before watching a file's directories).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads pending events, if the reactor saw any; true if something changed (the caller
    /// then clears the cache).
    pub fn changed(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok(mut ready)) = self.fd.poll_read_ready(&mut cx) else {
            return false;
        };
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = false;
        loop {
            match sys::drain(self.fd.get_ref().as_raw_fd()) {
                Ok(0) => break,
                Ok(_) => changed = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready.clear_ready();
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading inotify events failed");
                    changed = true;
                    break;
                }
            }
        }
        if changed {
            // Watches of removed directories are gone: start the set afresh.
            dirs.clear();
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    /// Watches `root` and every directory below it on the way to `file`; false if one could
    /// not be watched.
    pub fn cover(&self, root: &Path, file: &Path) -> bool {
        let Ok(relative) = file.strip_prefix(root) else {
            return false;
        };
        let mut dir = root.to_path_buf();
        let mut all = self.add(&dir);
        if let Some(parent) = relative.parent() {
            for component in parent.components() {
                dir.push(component);
                all &= self.add(&dir);
            }
        }
        all
    }

    fn add(&self, dir: &Path) -> bool {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if dirs.contains(dir) {
            return true;
        }
        match sys::add_watch(self.fd.get_ref().as_raw_fd(), dir) {
            Ok(()) => {
                dirs.insert(dir.to_path_buf());
                true
            }
            Err(error) => {
                tracing::debug!(dir = %dir.display(), %error, "cannot watch directory");
                false
            }
        }
    }
}

/// The system calls, each with its safety argument.
mod sys {
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// Changes to a directory's entries or to the files in it; not opens, reads or closes.
    const MASK: u32 = libc::IN_MODIFY
        | libc::IN_ATTRIB
        | libc::IN_CLOSE_WRITE
        | libc::IN_MOVED_FROM
        | libc::IN_MOVED_TO
        | libc::IN_CREATE
        | libc::IN_DELETE
        | libc::IN_DELETE_SELF
        | libc::IN_MOVE_SELF;

    pub fn init() -> io::Result<OwnedFd> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The descriptor in tokio's reactor, for readability.
    pub fn register(fd: OwnedFd) -> Option<AsyncFd<OwnedFd>> {
        // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which keeps it open, and its
        // `as_raw_fd` unchanged, until it is dropped.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()
    }

    pub fn add_watch(fd: RawFd, dir: &Path) -> io::Result<()> {
        let path = CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call; `fd` is open.
        let wd = unsafe { libc::inotify_add_watch(fd, path.as_ptr(), MASK | libc::IN_ONLYDIR) };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads (and discards) a batch of pending events; Ok(0) at end of file.
    pub fn drain(fd: RawFd) -> io::Result<usize> {
        let mut buffer = [0u8; 4096];
        // SAFETY: the buffer is writable for its whole length, which is what is passed.
        let n = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n.unsigned_abs())
    }
}

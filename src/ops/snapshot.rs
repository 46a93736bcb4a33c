//! Snapshots: immutable state that the hot path reads without locks, and a reload rebuilds off
//! the hot path and swaps in whole.
//!
//! One mechanism for every piece of state a reload may change (the DNS catalog, the web site
//! and its certificates, the page templates, the site's settings):
//!
//! 1. readers call [`Snapshot::load`]: an `ArcSwap` load, no lock, no allocation; what they got
//!    stays valid (and unchanged) for as long as they hold it, whatever is swapped meanwhile;
//! 2. a reload calls [`Snapshot::rebuild`] (or [`Snapshot::rebuild_async`] for a build that
//!    awaits, such as a database read), which builds the next version from the current one on
//!    a blocking thread, so that a slow build (a big zone) never stalls the async workers;
//! 3. on success the new version is swapped in whole; on an error (or a panic in the build) the
//!    current version stays in service, the error is logged once with the snapshot's name, and
//!    the caller gets it back to report.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

/// A named, swappable, immutable value; cheap to clone (clones share the value).
pub struct Snapshot<T> {
    name: &'static str,
    current: Arc<ArcSwap<T>>,
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name,
            current: self.current.clone(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Snapshot<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("name", &self.name)
            .field("current", &self.current.load())
            .finish()
    }
}

/// Why a rebuild did not swap anything in.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError<E> {
    /// The build returned an error.
    #[error(transparent)]
    Build(E),
    /// The build panicked (or its thread could not run).
    #[error("the build of {0} did not complete (panic)")]
    Panicked(&'static str),
}

impl<T: Send + Sync + 'static> Snapshot<T> {
    /// A snapshot named `name` (for logs: "zones", "site", ...) holding `value`.
    pub fn new(name: &'static str, value: T) -> Self {
        Self {
            name,
            current: Arc::new(ArcSwap::from_pointee(value)),
        }
    }

    /// The snapshot's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The version in service, for the hot path (no lock, no reference count touched in the
    /// common case). Hold it briefly; use [`Snapshot::get`] to keep it.
    pub fn load(&self) -> Guard<Arc<T>> {
        self.current.load()
    }

    /// The version in service, to keep (a connection keeps the site it started with).
    pub fn get(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Puts `value` in service at once (for a value built elsewhere, already checked).
    pub fn store(&self, value: T) {
        self.current.store(Arc::new(value));
    }

    /// Builds the next version with `build(current)` on a blocking thread and swaps it in.
    /// On error or panic the current version stays and the failure is logged.
    pub async fn rebuild<E>(
        &self,
        build: impl FnOnce(&Arc<T>) -> Result<T, E> + Send + 'static,
    ) -> Result<Arc<T>, RebuildError<E>>
    where
        E: std::error::Error + Send + 'static,
    {
        let current = self.get();
        let built = tokio::task::spawn_blocking(move || build(&current)).await;
        self.settle(match built {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(RebuildError::Build(error)),
            Err(_) => Err(RebuildError::Panicked(self.name)),
        })
    }

    /// As [`Snapshot::rebuild`], for a build that awaits (it runs on the caller's task).
    pub async fn rebuild_async<E, F>(&self, build: F) -> Result<Arc<T>, RebuildError<E>>
    where
        E: std::error::Error + 'static,
        F: Future<Output = Result<T, E>>,
    {
        let built = build.await.map_err(RebuildError::Build);
        self.settle(built)
    }

    fn settle<E: std::error::Error + 'static>(
        &self,
        built: Result<T, RebuildError<E>>,
    ) -> Result<Arc<T>, RebuildError<E>> {
        match built {
            Ok(value) => {
                let value = Arc::new(value);
                self.current.store(value.clone());
                Ok(value)
            }
            Err(error) => {
                let shown = match &error {
                    RebuildError::Build(error) => super::chain(error).to_string(),
                    RebuildError::Panicked(_) => error.to_string(),
                };
                tracing::error!(
                    snapshot = self.name,
                    error = shown,
                    "reload failed; still serving the previous version"
                );
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_successful_build_is_swapped_in_and_readers_keep_what_they_hold() {
        let snapshot = Snapshot::new("numbers", vec![1]);
        let held = snapshot.get();
        let next = snapshot
            .rebuild(|current| Ok::<_, std::io::Error>([current.as_slice(), &[2]].concat()))
            .await
            .expect("built");
        assert_eq!(*next, [1, 2]);
        assert_eq!(**snapshot.load(), [1, 2]);
        assert_eq!(*held, [1], "a reader's version never changes under it");
    }

    #[tokio::test]
    async fn a_failed_or_panicking_build_keeps_the_previous_version() {
        let snapshot = Snapshot::new("numbers", vec![1]);
        let bad = || std::io::Error::other("bad");
        let failed = snapshot.rebuild(move |_| Err::<Vec<i32>, _>(bad())).await;
        assert!(matches!(failed, Err(RebuildError::Build(_))));
        let panicked = snapshot
            .rebuild(|_| -> Result<Vec<i32>, std::io::Error> { panic!("boom") })
            .await;
        assert!(matches!(panicked, Err(RebuildError::Panicked("numbers"))));
        let failed = snapshot
            .rebuild_async(async { Err::<Vec<i32>, _>(bad()) })
            .await;
        assert!(failed.is_err());
        assert_eq!(**snapshot.load(), [1]);
    }
}

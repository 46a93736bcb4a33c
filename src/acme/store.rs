//! Where ACME keeps what it must not lose: the account, the certificates and their keys, and
//! the status `onebox cert status` shows.
//!
//! [`Store`] is deliberately small — values by key, a lease so that one process at a time
//! orders a given certificate, and (for a store several boxes share) the http-01 answers of an
//! order — so that the store in the database (`dbstore`, `web.acme.storage = "database"`) can
//! replace [`FileStore`] without the client changing. Keys are relative paths of plain
//! segments (`accounts/<ca>.json`, `certs/<ca>/<name>/cert.pem`).
//!
//! [`FileStore`] keeps them under `state_dir/acme/`: directories mode 0700, secrets (keys)
//! 0600, each value written whole (a temporary file renamed over the old one). Its lease is an
//! exclusive `flock` on a lock file, so two onebox processes sharing a state directory (an
//! upgrade hand-over) never order the same certificate twice; the kernel releases it when the
//! process ends, however it ends.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A key that is not a relative path of plain segments.
    #[error("invalid store key {0:?}")]
    Key(String),
    /// The database (`web.acme.storage = "database"`) failed.
    #[error("ACME's storage in the database")]
    Db(#[from] crate::db::DbError),
}

/// Whether a value must be readable by onebox alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Anyone on the box may read it (certificates, status).
    Public,
    /// onebox alone (private keys, the account).
    Secret,
}

/// Values by key, and leases. Every method may be called from several tasks at once.
pub trait Store: Send + Sync + 'static {
    /// The value under `key`, if there is one.
    fn load(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Stores `value` under `key`, replacing what was there whole.
    fn save(
        &self,
        key: &str,
        value: &[u8],
        secrecy: Secrecy,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Takes the lease on `name` if nobody holds it; `false` if someone else does. Held until
    /// [`Store::release`] (or the holder's end).
    fn lease(&self, name: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease on `name` back.
    fn release(&self, name: &str) -> impl Future<Output = ()> + Send;

    /// Whether onebox processes on other boxes share this store: then each looks in it for a
    /// certificate another one obtained ([`Store::poll_interval`]), and an http-01 answer is
    /// published through it ([`Store::publish_http`]).
    fn poll_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// Publishes an http-01 answer where every box sharing the store finds it (a store only
    /// this box reads has nothing to do: the answer is in `ops::challenges` already).
    fn publish_http(
        &self,
        _token: &str,
        _key_authorization: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        std::future::ready(Ok(()))
    }

    /// Withdraws what [`Store::publish_http`] published.
    fn withdraw_http(&self, _token: &str) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// The store in `state_dir/acme/`.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    /// The lock files of the leases held, open (closing one releases its lock).
    leases: Arc<Mutex<HashMap<String, File>>>,
}

impl FileStore {
    /// The store under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.join("acme"),
            leases: Arc::default(),
        }
    }

    /// The directory it keeps everything in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`.
    pub fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let plain = !key.is_empty()
            && key.split('/').all(|segment| {
                !segment.is_empty() && segment != "." && segment != ".." && !segment.contains('\0')
            });
        if !plain {
            return Err(StoreError::Key(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    /// [`Store::load`], blocking (for the command line and start-up).
    pub fn load_now(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(key)?;
        match fs::read(&path) {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// [`Store::save`], blocking.
    pub fn save_now(&self, key: &str, value: &[u8], secrecy: Secrecy) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let io_error = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_error(dir))?;
        }
        let mode = match secrecy {
            Secrecy::Public => 0o644,
            Secrecy::Secret => 0o600,
        };
        let temporary = path.with_extension("tmp");
        let _ = fs::remove_file(&temporary);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)
            .map_err(io_error(&temporary))?;
        file.write_all(value)
            .and_then(|()| file.sync_all())
            .map_err(io_error(&temporary))?;
        fs::rename(&temporary, &path).map_err(io_error(&path))
    }

    fn lease_now(&self, name: &str) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if leases.contains_key(name) {
            return Ok(false);
        }
        let path = self.path(&format!("locks/{name}.lock"))?;
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| StoreError::Io {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        // SAFETY: flock(2) on a descriptor we own and keep open while the lease is held.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(false);
            }
            return Err(StoreError::Io {
                path,
                source: error,
            });
        }
        leases.insert(name.to_owned(), file);
        Ok(true)
    }
}

impl Store for FileStore {
    async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (store, key) = (self.clone(), key.to_owned());
        blocking(move || store.load_now(&key)).await
    }

    async fn save(&self, key: &str, value: &[u8], secrecy: Secrecy) -> Result<(), StoreError> {
        let (store, key, value) = (self.clone(), key.to_owned(), value.to_vec());
        blocking(move || store.save_now(&key, &value, secrecy)).await
    }

    async fn lease(&self, name: &str) -> Result<bool, StoreError> {
        let (store, name) = (self.clone(), name.to_owned());
        blocking(move || store.lease_now(&name)).await
    }

    async fn release(&self, name: &str) {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        // Closing the file releases the lock.
        leases.remove(name);
    }
}

/// Runs file I/O off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| {
            Err(StoreError::Io {
                path: PathBuf::new(),
                source: io::Error::other(error),
            })
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn values_round_trip_with_their_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        assert_eq!(store.load("certs/x/cert.pem").await.expect("load"), None);
        store
            .save("certs/x/key.pem", b"secret", Secrecy::Secret)
            .await
            .expect("save");
        store
            .save("certs/x/cert.pem", b"public", Secrecy::Public)
            .await
            .expect("save");
        store
            .save("certs/x/cert.pem", b"newer", Secrecy::Public)
            .await
            .expect("replace");
        let load = |key: &'static str| store.load_now(key).expect("load");
        assert_eq!(load("certs/x/cert.pem").as_deref(), Some(&b"newer"[..]));
        assert_eq!(load("certs/x/key.pem").as_deref(), Some(&b"secret"[..]));
        let mode = |path: PathBuf| fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(store.path("certs/x/key.pem").expect("path")), 0o600);
        assert_eq!(mode(store.path("certs/x/cert.pem").expect("path")), 0o644);
        assert_eq!(mode(dir.path().join("acme/certs/x")), 0o700);
        for bad in ["", "../x", "a//b", "/abs", "a/./b"] {
            assert!(store.path(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn one_lease_holder_at_a_time_across_stores() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = FileStore::new(dir.path());
        // Another process sharing the state directory: a store of its own, its own descriptor.
        let second = FileStore::new(dir.path());
        assert!(first.lease("www").await.expect("lease"));
        assert!(!first.lease("www").await.expect("again"));
        assert!(!second.lease("www").await.expect("other holder"));
        assert!(second.lease("other").await.expect("another name"));
        first.release("www").await;
        assert!(second.lease("www").await.expect("released"));
    }
}

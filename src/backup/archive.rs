//! The archive's container: a tar stream, encrypted with age (a passphrase, scrypt) when
//! `backup.passphrase_file` is set, whose last member is the manifest.
//!
//! Writing: [`Writer`] hashes every member as it goes (SHA-256, ring) and appends the manifest
//! last, into a temporary file (mode 0600) renamed to its final name once complete and synced.
//! Reading: [`read`] goes through the whole archive once, hashing every member, and checks
//! the result against the manifest before anything is changed; then the caller reads it again
//! to apply it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use ring::digest;
use serde::{Deserialize, Serialize};

use super::BackupError;

/// The manifest's member name (always the archive's last member).
pub const MANIFEST: &str = "MANIFEST.json";

/// The manifest's `format`.
pub const FORMAT: &str = "onebox-backup 1";

/// What an age file starts with.
const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";

/// The scrypt work factor (N = 2^18, 256 MiB) of the key an archive's passphrase gives: fixed,
/// as the age reference implementation's default, rather than age's "about a second on this
/// machine", which a busy machine measures low (a weaker archive) and a fast one high.
const SCRYPT_WORK_FACTOR: u8 = 18;

/// The largest work factor a restore accepts (N = 2^22, 4 GiB): the reference implementation's
/// bound. age's own default bound is measured on the machine restoring, so an archive written
/// on a fast or idle machine was refused on a slow or busy one ("excessive work parameter").
const SCRYPT_MAX_WORK_FACTOR: u8 = 22;

/// The manifest: what the archive holds and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The onebox version that wrote it.
    pub onebox_version: String,
    /// The schema: the last migration applied to the database dumped.
    pub schema: String,
    /// Every migration applied to it, oldest first.
    pub migrations: Vec<String>,
    /// When the backup was taken (RFC 3339, UTC).
    pub created: String,
    /// Rows per table in the dump.
    pub tables: Vec<(String, u64)>,
    /// Every other member, in archive order.
    pub members: Vec<Member>,
}

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its path in the archive.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content, hex (directories and links: of nothing).
    pub sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the passphrase: the first line of `file`.
pub fn passphrase(file: &Path) -> Result<SecretString, BackupError> {
    let text = std::fs::read_to_string(file).map_err(|source| BackupError::Passphrase {
        path: file.to_owned(),
        why: source.to_string(),
    })?;
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if first.is_empty() {
        return Err(BackupError::Passphrase {
            path: file.to_owned(),
            why: "its first line is empty".to_owned(),
        });
    }
    Ok(SecretString::from(first.to_owned()))
}

/// Where the bytes go: the file, through age when encrypting.
enum Sink {
    Plain(BufWriter<File>),
    Age(age::stream::StreamWriter<BufWriter<File>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(w) => w.write(buf),
            Self::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(w) => w.flush(),
            Self::Age(w) => w.flush(),
        }
    }
}

impl Sink {
    fn finish(self) -> io::Result<File> {
        let buffered = match self {
            Self::Plain(w) => w,
            Self::Age(w) => w.finish()?,
        };
        buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }
}

/// An archive being written to a temporary file beside its final name.
pub struct Writer {
    tar: tar::Builder<Sink>,
    members: Vec<Member>,
    temporary: Partial,
    path: PathBuf,
}

/// The temporary file, removed unless the archive was completed: an archive not finished
/// leaves nothing that looks whole.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Writer {
    /// Starts `path` (written as `.NAME.partial` until [`Writer::finish`]), mode 0600.
    pub fn create(path: &Path, passphrase: Option<SecretString>) -> Result<Self, BackupError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let temporary = dir.join(format!(".{name}.partial"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|source| BackupError::Write {
                path: temporary.clone(),
                source,
            })?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let sink = match passphrase {
            None => Sink::Plain(out),
            Some(passphrase) => Sink::Age({
                let mut recipient = age::scrypt::Recipient::new(passphrase);
                recipient.set_work_factor(SCRYPT_WORK_FACTOR);
                age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                    .map_err(|e| BackupError::Write {
                        path: temporary.clone(),
                        source: io::Error::other(e),
                    })?
                    .wrap_output(out)
                    .map_err(|source| BackupError::Write {
                        path: temporary.clone(),
                        source,
                    })?
            }),
        };
        let mut tar = tar::Builder::new(sink);
        tar.mode(tar::HeaderMode::Complete);
        Ok(Self {
            tar,
            members: Vec::new(),
            temporary: Partial(temporary),
            path: path.to_owned(),
        })
    }

    fn failed(&self, source: io::Error) -> BackupError {
        BackupError::Write {
            path: self.temporary.0.clone(),
            source,
        }
    }

    /// Adds a regular file's content under `name` (`size` bytes from `content`: fewer or more
    /// means it changed while being read, an error), with `mode` and `mtime`.
    pub fn file(
        &mut self,
        name: &str,
        size: u64,
        mode: u32,
        mtime: u64,
        content: &mut dyn Read,
    ) -> Result<(), BackupError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(mode & 0o7777);
        header.set_mtime(mtime);
        let mut hashing = Hashing::new(content.take(size));
        self.tar
            .append_data(&mut header, name, &mut hashing)
            .map_err(|e| self.failed(e))?;
        let (read, sha256) = hashing.finish();
        if read != size {
            return Err(BackupError::Changed {
                member: name.to_owned(),
            });
        }
        self.members.push(Member {
            path: name.to_owned(),
            size,
            sha256,
        });
        Ok(())
    }

    /// Adds bytes held in memory.
    pub fn bytes(&mut self, name: &str, content: &[u8]) -> Result<(), BackupError> {
        let mtime = chrono::Utc::now().timestamp().max(0) as u64;
        self.file(name, content.len() as u64, 0o600, mtime, &mut &content[..])
    }

    /// Adds the file at `path` under `name`.
    pub fn path(&mut self, name: &str, path: &Path) -> Result<(), BackupError> {
        let read = |source| BackupError::Read {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(read)?;
        let meta = file.metadata().map_err(read)?;
        self.file(
            name,
            meta.len(),
            meta.permissions().mode(),
            meta.mtime().max(0) as u64,
            &mut file,
        )
    }

    /// Adds a directory entry (so that empty directories and modes come back).
    pub fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> Result<(), BackupError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(mode & 0o7777);
        header.set_mtime(mtime);
        self.tar
            .append_data(&mut header, name, io::empty())
            .map_err(|e| self.failed(e))?;
        self.members.push(Member {
            path: name.to_owned(),
            size: 0,
            sha256: String::new(),
        });
        Ok(())
    }

    /// Adds a symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &Path) -> Result<(), BackupError> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        self.tar
            .append_link(&mut header, name, target)
            .map_err(|e| self.failed(e))?;
        self.members.push(Member {
            path: name.to_owned(),
            size: 0,
            sha256: format!("-> {}", target.display()),
        });
        Ok(())
    }

    /// Adds every file under `dir` (recursively, in name order) under `prefix/`. A missing
    /// directory adds nothing.
    pub fn tree(&mut self, prefix: &str, dir: &Path) -> Result<(), BackupError> {
        let read = |source| BackupError::Read {
            path: dir.to_owned(),
            source,
        };
        let meta = match std::fs::symlink_metadata(dir) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(read(error)),
        };
        self.dir(
            prefix,
            meta.permissions().mode(),
            meta.mtime().max(0) as u64,
        )?;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(read)?
            .collect::<Result<_, _>>()
            .map_err(read)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %path.display(), "not a UTF-8 name: left out of the backup");
                continue;
            };
            let member = format!("{prefix}/{name}");
            let kind = entry.file_type().map_err(read)?;
            if kind.is_dir() {
                self.tree(&member, &path)?;
            } else if kind.is_file() {
                self.path(&member, &path)?;
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).map_err(read)?;
                self.symlink(&member, &target)?;
            }
        }
        Ok(())
    }

    /// Appends the manifest (with every member added), completes the stream, syncs the file
    /// and renames it to its final name. Returns the archive's size and the manifest written.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<(u64, Manifest), BackupError> {
        manifest.members = std::mem::take(&mut self.members);
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| self.failed(e.into()))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(text.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        self.tar
            .append_data(&mut header, MANIFEST, &text[..])
            .map_err(|e| self.failed(e))?;
        let temporary = self.temporary.0.clone();
        let fail = |source| BackupError::Write {
            path: temporary.clone(),
            source,
        };
        let sink = self.tar.into_inner().map_err(fail)?;
        let file = sink.finish().map_err(fail)?;
        file.sync_all().map_err(fail)?;
        let size = file.metadata().map_err(fail)?.len();
        drop(file);
        std::fs::rename(&temporary, &self.path).map_err(fail)?;
        self.temporary.0 = PathBuf::new();
        if let Some(dir) = self.path.parent() {
            // The rename itself made durable.
            if let Ok(dir) = File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }) {
                let _ = dir.sync_all();
            }
        }
        Ok((size, manifest))
    }
}

/// A reader that hashes what it reads and counts it.
struct Hashing<R> {
    inner: R,
    context: digest::Context,
    read: u64,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            context: digest::Context::new(&digest::SHA256),
            read: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.read, hex(self.context.finish().as_ref()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.context.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Opens `path` for reading its tar stream: decrypted when it is an age file.
pub fn open(
    path: &Path,
    passphrase: Option<&SecretString>,
) -> Result<(Box<dyn Read>, bool), BackupError> {
    let file = File::open(path).map_err(|source| BackupError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let head = input.fill_buf().map_err(|source| BackupError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !head.starts_with(AGE_MAGIC) {
        return Ok((Box::new(input), false));
    }
    let Some(passphrase) = passphrase else {
        return Err(BackupError::Encrypted);
    };
    let decryptor = age::Decryptor::new_buffered(input).map_err(|e| damaged_age(path, e))?;
    let mut identity = age::scrypt::Identity::new(passphrase.clone());
    identity.set_max_work_factor(SCRYPT_MAX_WORK_FACTOR);
    let reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| damaged_age(path, e))?;
    Ok((Box::new(reader), true))
}

fn damaged_age(path: &Path, error: age::DecryptError) -> BackupError {
    use age::DecryptError as E;
    match error {
        E::DecryptionFailed | E::NoMatchingKeys | E::KeyDecryptionFailed => {
            BackupError::WrongPassphrase
        }
        E::Io(source) => BackupError::Read {
            path: path.to_owned(),
            source,
        },
        other => BackupError::Damaged {
            member: "(age header)".to_owned(),
            why: other.to_string(),
        },
    }
}

/// A member as [`read`] hands it to its visitor.
pub struct Entry<'a> {
    /// Its path in the archive.
    pub path: String,
    /// What it is.
    pub kind: tar::EntryType,
    /// Its mode.
    pub mode: u32,
    /// Its modification time.
    pub mtime: u64,
    /// A symbolic link's target.
    pub link: Option<PathBuf>,
    /// Its content.
    pub content: &'a mut dyn Read,
}

/// Reads every member of the tar stream `input`, handing each but the manifest to `visit`
/// (which may read its content, or not), while checking the whole against the manifest: every
/// member present, of its size and checksum, nothing more, the manifest last. Returns the
/// manifest.
///
/// A damaged or truncated archive is an error naming the member where it showed.
pub fn read(
    input: &mut dyn Read,
    mut visit: impl FnMut(&mut Entry<'_>) -> Result<(), BackupError>,
) -> Result<Manifest, BackupError> {
    let mut archive = tar::Archive::new(input);
    let mut seen: Vec<Member> = Vec::new();
    let mut manifest: Option<Manifest> = None;
    let after = |seen: &[Member]| {
        seen.last()
            .map_or_else(|| "the start".to_owned(), |m| format!("member {}", m.path))
    };
    let entries = archive.entries().map_err(|e| BackupError::Damaged {
        member: "the start".to_owned(),
        why: e.to_string(),
    })?;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            // The tar reader's words for a header cut short.
            let text = e.to_string();
            if e.kind() == io::ErrorKind::UnexpectedEof
                || text.contains("entire block")
                || text.contains("unexpected EOF")
            {
                BackupError::Truncated {
                    at: format!("after {}", after(&seen)),
                }
            } else {
                BackupError::Damaged {
                    member: format!("after {}", after(&seen)),
                    why: e.to_string(),
                }
            }
        })?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if manifest.is_some() {
            return Err(BackupError::Damaged {
                member: path,
                why: "a member after the manifest".to_owned(),
            });
        }
        safe_path(&path)?;
        let size = entry.size();
        let damaged = |why: String| BackupError::Damaged {
            member: path.clone(),
            why,
        };
        if path == MANIFEST {
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| damaged(e.to_string()))?;
            if text.len() as u64 != size {
                return Err(BackupError::Truncated {
                    at: format!("inside member {path}"),
                });
            }
            manifest = Some(
                serde_json::from_slice(&text).map_err(|e| damaged(format!("unreadable: {e}")))?,
            );
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o600);
        let mtime = header.mtime().unwrap_or(0);
        let link = entry
            .link_name()
            .map_err(|e| damaged(e.to_string()))?
            .map(|l| l.into_owned());
        let sha256 = if kind.is_file() {
            let mut hashing = Hashing::new(&mut entry);
            let mut visited = Entry {
                path: path.clone(),
                kind,
                mode,
                mtime,
                link: None,
                content: &mut hashing,
            };
            visit(&mut visited)?;
            // What the visitor left unread.
            io::copy(&mut hashing, &mut io::sink()).map_err(|e| damaged(e.to_string()))?;
            let (read, sha256) = hashing.finish();
            if read != size {
                return Err(BackupError::Truncated {
                    at: format!("inside member {path}"),
                });
            }
            sha256
        } else {
            let mut nothing = io::empty();
            let mut visited = Entry {
                path: path.clone(),
                kind,
                mode,
                mtime,
                link: link.clone(),
                content: &mut nothing,
            };
            visit(&mut visited)?;
            match &link {
                Some(target) if kind.is_symlink() => format!("-> {}", target.display()),
                _ => String::new(),
            }
        };
        seen.push(Member {
            path,
            size: if kind.is_file() { size } else { 0 },
            sha256,
        });
    }
    let Some(manifest) = manifest else {
        return Err(BackupError::Truncated {
            at: format!("after {}, before its manifest", after(&seen)),
        });
    };
    if manifest.format != FORMAT {
        return Err(BackupError::Format(manifest.format));
    }
    for expected in &manifest.members {
        match seen.iter().find(|m| m.path == expected.path) {
            None => {
                return Err(BackupError::Missing {
                    member: expected.path.clone(),
                });
            }
            Some(found) if found != expected => {
                return Err(BackupError::Checksum {
                    member: expected.path.clone(),
                });
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.iter().find(|m| !manifest.members.contains(m)) {
        return Err(BackupError::Damaged {
            member: extra.path.clone(),
            why: "not in the manifest".to_owned(),
        });
    }
    Ok(manifest)
}

/// A member's path must stay inside where it is restored: relative, no `..`.
fn safe_path(path: &str) -> Result<(), BackupError> {
    let ok = !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(BackupError::Damaged {
            member: path.to_owned(),
            why: "a path leading outside the archive's directories".to_owned(),
        })
    }
}

//! Backup and restore: the whole box in one archive, and back.
//!
//! An archive (`onebox-backup-<UTC time>.tar`, `.tar.age` when encrypted) holds, in order:
//!
//! - `database.jsonl.gz`: the database as an engine-independent dump from one consistent
//!   snapshot (`db::dump`), so that a SQLite backup restores into MariaDB and the reverse
//!   (with `web.acme.storage = "database"`, ACME's account and certificates, private keys
//!   included, are rows of it);
//! - `onebox.toml`: the configuration in effect;
//! - `zones/`, `site/`: `dns.zones_dir` and `web.site_dir`;
//! - `state/acme/`, `state/keys/`, `state/dev-ca/`, `state/dns/`: `state_dir`'s certificates
//!   and keys (ACME, DNSSEC, the development CA) and the zones' served versions and journals;
//! - `MANIFEST.json`, last: the onebox version, the schema (every migration applied), the
//!   creation time, and every member's size and SHA-256.
//!
//! [`create`] writes it under a temporary name, renamed once complete and synced, mode 0600,
//! encrypted with age (scrypt) when `backup.passphrase_file` is set. [`restore`] reads the
//! whole archive and checks every checksum before it changes anything, refuses a target that
//! is not empty (unless forced) and an archive of a newer schema, brings the database's schema
//! to the archive's, loads the dump, then applies the newer migrations this binary has.
//! [`schedule`] takes backups from `serve` on `backup.schedule` and keeps `backup.keep`.

mod archive;
pub mod schedule;

use std::io::{BufReader, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

pub use archive::{Manifest, Member};

use crate::config::Config;
use crate::db::{self, Db, DbError};

/// The dump's member.
const DATABASE: &str = "database.jsonl.gz";

/// The configuration's member.
const CONFIG: &str = "onebox.toml";

/// The directories of `state_dir` an archive holds.
pub const STATE_DIRS: &[&str] = &["acme", "keys", "dev-ca", "dns"];

/// Where a restore puts the archive's configuration, in `state_dir` (the target's own
/// configuration says where everything goes; this one is for comparing).
pub const RESTORED_CONFIG: &str = "restored-onebox.toml";

/// What a backup or a restore refused, or what failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The passphrase file cannot be used.
    #[error("key backup.passphrase_file: {path}: {why}")]
    Passphrase {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Writing the archive (or its temporary files) failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading a file failed.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file changed size while it was archived.
    #[error("{member} changed while it was being archived; take the backup again")]
    Changed {
        /// The member.
        member: String,
    },
    /// The archive is encrypted and no passphrase is configured.
    #[error(
        "the archive is encrypted: set backup.passphrase_file to a file holding its passphrase"
    )]
    Encrypted,
    /// The passphrase does not decrypt the archive.
    #[error(
        "wrong passphrase: the one in backup.passphrase_file does not decrypt this archive; nothing was changed"
    )]
    WrongPassphrase,
    /// The archive is damaged.
    #[error("damaged archive, at {member}: {why}; nothing was changed")]
    Damaged {
        /// Where it showed.
        member: String,
        /// What was wrong.
        why: String,
    },
    /// The archive ends early.
    #[error("truncated archive: it ends {at}; nothing was changed")]
    Truncated {
        /// Where: `inside member X`, `after member X`.
        at: String,
    },
    /// A member's content is not what the manifest says.
    #[error("member {member}: checksum mismatch, the archive is damaged; nothing was changed")]
    Checksum {
        /// The member.
        member: String,
    },
    /// A member the manifest lists is not in the archive.
    #[error("member {member} is missing from the archive; nothing was changed")]
    Missing {
        /// The member.
        member: String,
    },
    /// Not an archive this onebox reads.
    #[error("not a onebox backup this version reads (format {0:?}); nothing was changed")]
    Format(String),
    /// The archive's schema is newer than this binary's.
    #[error(
        "the archive is from a newer onebox ({version}, schema {schema}); this onebox \
         ({ours}) knows the schema up to {known}: restore it with onebox {version} or later; \
         nothing was changed"
    )]
    Newer {
        /// The version that wrote the archive.
        version: String,
        /// The archive's last migration.
        schema: String,
        /// This binary's version.
        ours: String,
        /// This binary's last migration.
        known: String,
    },
    /// The target holds data already.
    #[error(
        "the target is not empty ({0}); restore onto a fresh box, or add --force to replace \
         what is there; nothing was changed"
    )]
    NotEmpty(String),
    /// The database failed.
    #[error("{0}")]
    Db(#[from] DbError),
}

/// A backup written.
#[derive(Debug, Clone)]
pub struct Created {
    /// The archive.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// Its manifest.
    pub manifest: Manifest,
}

/// The passphrase `backup.passphrase_file` holds, if one is configured.
fn passphrase(config: &Config) -> Result<Option<age::secrecy::SecretString>, BackupError> {
    let file = &config.backup.passphrase_file;
    if file.as_os_str().is_empty() {
        return Ok(None);
    }
    archive::passphrase(file).map(Some)
}

/// Whether archives are encrypted (`backup.passphrase_file` is set).
pub fn encrypts(config: &Config) -> bool {
    !config.backup.passphrase_file.as_os_str().is_empty()
}

/// The name of an archive taken at `time`: they sort in time order.
fn archive_name(time: chrono::DateTime<chrono::Utc>, encrypted: bool) -> String {
    format!(
        "onebox-backup-{}.tar{}",
        time.format("%Y-%m-%dT%H-%M-%S%.3fZ"),
        if encrypted { ".age" } else { "" }
    )
}

/// Whether `name` is an archive [`create`] wrote.
pub fn is_archive_name(name: &str) -> bool {
    name.starts_with("onebox-backup-") && (name.ends_with(".tar") || name.ends_with(".tar.age"))
}

/// Takes a backup of everything `config` describes into a new archive in `dir` (created
/// mode 0700 if missing).
pub async fn create(config: &Config, db: &Db, dir: &Path) -> Result<Created, BackupError> {
    let passphrase = passphrase(config)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| BackupError::Write {
            path: dir.to_owned(),
            source,
        })?;
    let created = chrono::Utc::now();
    let encrypted = passphrase.is_some();
    let path = dir.join(archive_name(created, encrypted));

    // The database first, into a temporary file beside the archive: its snapshot lasts as
    // long as reading it takes, and no longer.
    let dump = dir.join(format!(
        ".{}.dump",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _removed = Removed(dump.clone());
    let write_error = |source| BackupError::Write {
        path: dump.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&dump)
        .map_err(write_error)?;
    let mut gzip = GzEncoder::new(BufWriter::with_capacity(1 << 20, file), Compression::new(3));
    let summary = db::dump::dump(db, dir, &mut gzip).await?;
    gzip.finish()
        .and_then(|mut out| out.flush())
        .map_err(write_error)?;

    let manifest = Manifest {
        format: archive::FORMAT.to_owned(),
        onebox_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema: summary.migrations.last().cloned().unwrap_or_default(),
        migrations: summary.migrations.clone(),
        created: created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        tables: summary.tables.clone(),
        members: Vec::new(),
    };
    let settings = toml::to_string_pretty(config).unwrap_or_else(|error| {
        format!("# the configuration could not be written as TOML: {error}\n")
    });
    let zones = config.dns.zones_dir.clone();
    let site = config.web.site_dir.clone();
    let state = config.state_dir.clone();
    let target = path.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut writer = archive::Writer::create(&target, passphrase)?;
        writer.path(DATABASE, &dump)?;
        writer.bytes(CONFIG, settings.as_bytes())?;
        writer.tree("zones", &zones)?;
        writer.tree("site", &site)?;
        for sub in STATE_DIRS {
            writer.tree(&format!("state/{sub}"), &state.join(sub))?;
        }
        writer.finish(manifest)
    })
    .await;
    let (size, manifest) = match written {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    };
    Ok(Created {
        path,
        size,
        encrypted,
        manifest,
    })
}

/// Removes a file when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads the whole archive and checks it (every checksum, the schema against this binary's);
/// changes nothing. Returns its manifest.
pub fn verify(config: &Config, file: &Path) -> Result<Manifest, BackupError> {
    let passphrase = passphrase(config)?;
    let (mut input, _) = archive::open(file, passphrase.as_ref())?;
    let manifest = archive::read(&mut input, |_| Ok(()))?;
    let known = db::dump::known_migrations();
    if !known.starts_with(&manifest.migrations) {
        return Err(BackupError::Newer {
            version: manifest.onebox_version.clone(),
            schema: manifest.schema.clone(),
            ours: env!("CARGO_PKG_VERSION").to_owned(),
            known: known.last().cloned().unwrap_or_default(),
        });
    }
    Ok(manifest)
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Migrations applied after loading (the archive's schema was older).
    pub migrated: usize,
    /// Files, directories and links written.
    pub files: usize,
    /// Where the archive's configuration was put.
    pub config: PathBuf,
}

/// Restores `file` onto the box `config` describes: its database, zones and site
/// directories, and `state_dir`. Everything is checked first ([`verify`]); a target holding
/// data is refused unless `force`, which replaces it.
///
/// Runs on the caller's thread, the database's work on `runtime` (the one-shot command's).
pub fn restore(
    config: &Config,
    file: &Path,
    force: bool,
    runtime: &tokio::runtime::Runtime,
) -> Result<Restored, BackupError> {
    let manifest = verify(config, file)?;
    let db = runtime.block_on(async {
        let db = Db::connect(config).await?;
        db.ping().await?;
        Ok::<_, DbError>(db)
    })?;
    let mut occupied = Vec::new();
    let counts = runtime.block_on(db::dump::row_counts(&db))?;
    let rows: u64 = counts.iter().map(|(_, n)| n).sum();
    if rows > 0 {
        let tables: Vec<String> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        occupied.push(format!(
            "the database {} holds {rows} rows ({})",
            db::redact(&config.database_url()),
            tables.join(", ")
        ));
    }
    let roots = roots(config);
    for (_, dir) in &roots {
        if has_entries(dir) {
            occupied.push(format!("{} is not empty", dir.display()));
        }
    }
    if !occupied.is_empty() && !force {
        return Err(BackupError::NotEmpty(occupied.join("; ")));
    }

    let passphrase = passphrase(config)?;
    let (mut input, _) = archive::open(file, passphrase.as_ref())?;
    let mut files = 0usize;
    let mut cleared: Vec<PathBuf> = Vec::new();
    let mut modes: Vec<(PathBuf, u32)> = Vec::new();
    let owner = owner_of(&config.state_dir);
    let restored_config = config.state_dir.join(RESTORED_CONFIG);
    archive::read(&mut input, |entry| {
        if entry.path == DATABASE {
            let mut dump = BufReader::new(GzDecoder::new(&mut *entry.content));
            let migrations = db::dump::read_head(&mut dump)?;
            let known = db::dump::known_migrations();
            if !known.starts_with(&migrations) {
                return Err(BackupError::Damaged {
                    member: DATABASE.to_owned(),
                    why: "its schema differs from the manifest's".to_owned(),
                });
            }
            runtime.block_on(async {
                db.migrate_to(migrations.len()).await?;
                db::dump::load(&db, &mut dump, force).await
            })?;
            return Ok(());
        }
        if entry.path == CONFIG {
            write_file(&restored_config, 0o600, entry, None)?;
            return Ok(());
        }
        let Some((root, target)) = destination(&roots, &entry.path) else {
            return Ok(());
        };
        if force && !cleared.contains(&root) {
            clear(&root)?;
            cleared.push(root.clone());
        }
        let owner = if target.starts_with(&config.state_dir) {
            owner
        } else {
            None
        };
        match entry.kind {
            kind if kind.is_dir() => {
                create_dir(&target)?;
                chown(&target, owner);
                modes.push((target, entry.mode));
            }
            kind if kind.is_symlink() => {
                let link = entry.link.clone().unwrap_or_default();
                if let Some(parent) = target.parent() {
                    create_dir(parent)?;
                }
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(&link, &target).map_err(|source| {
                    BackupError::Write {
                        path: target.clone(),
                        source,
                    }
                })?;
            }
            kind if kind.is_file() => write_file(&target, entry.mode, entry, owner)?,
            _ => return Ok(()),
        }
        files += 1;
        Ok(())
    })?;
    // Directory modes last: a read-only directory is still written into above.
    for (dir, mode) in modes.iter().rev() {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o7777));
    }
    let migrated = runtime.block_on(db.migrate_up(None))?;
    Ok(Restored {
        manifest,
        migrated,
        files,
        config: restored_config,
    })
}

/// Where each top-level part of an archive goes on this box: (member prefix, directory).
fn roots(config: &Config) -> Vec<(String, PathBuf)> {
    let mut roots = vec![
        ("zones".to_owned(), config.dns.zones_dir.clone()),
        ("site".to_owned(), config.web.site_dir.clone()),
    ];
    for sub in STATE_DIRS {
        roots.push((format!("state/{sub}"), config.state_dir.join(sub)));
    }
    roots
}

/// The directory a member belongs to and its path on this box.
fn destination(roots: &[(String, PathBuf)], member: &str) -> Option<(PathBuf, PathBuf)> {
    roots.iter().find_map(|(prefix, dir)| {
        let rest = member.strip_prefix(prefix.as_str())?;
        if rest.is_empty() {
            Some((dir.clone(), dir.clone()))
        } else {
            let rest = rest.strip_prefix('/')?;
            Some((dir.clone(), dir.join(rest)))
        }
    })
}

fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

fn clear(dir: &Path) -> Result<(), BackupError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Write {
            path: dir.to_owned(),
            source,
        }),
    }
}

fn create_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir).map_err(|source| BackupError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// The owner of `state_dir` when the restore runs as root (restored keys must stay readable
/// by the account onebox serves as).
fn owner_of(dir: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let meta = std::fs::metadata(dir).ok()?;
    (meta.uid() != 0).then_some((meta.uid(), meta.gid()))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    }
}

/// Writes a member's content to `path` (through a temporary name), with its mode and time.
fn write_file(
    path: &Path,
    mode: u32,
    entry: &mut archive::Entry<'_>,
    owner: Option<(u32, u32)>,
) -> Result<(), BackupError> {
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    let temporary = path.with_file_name(format!(
        ".{}.restoring",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let failed = |source| BackupError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed)?;
    std::io::copy(&mut entry.content, &mut file).map_err(failed)?;
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(failed)?;
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(entry.mtime);
    let _ = file.set_modified(mtime);
    drop(file);
    chown(&temporary, owner);
    std::fs::rename(&temporary, path).map_err(failed)
}

//! `onebox backup` and `onebox restore`: the whole box in one archive, and back (the work is
//! `crate::backup`'s).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::{Cli, load_config, small_runtime};
use crate::backup::{self, BackupError};
use crate::config::Config;
use crate::{db, ops};

/// `onebox backup [--to DIR]`: prints the archive's path.
pub(super) fn backup(cli: &Cli, to: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let dir = to.unwrap_or(&config.backup.dir);
    let created = small_runtime()?.block_on(take(&config, dir))?;
    writeln!(std::io::stdout().lock(), "{}", created.path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Takes a backup into `dir` and says what it holds on stderr.
pub(super) async fn take(config: &Config, dir: &Path) -> anyhow::Result<backup::Created> {
    let database = db::Db::connect(config).await?;
    database.ping().await.context("key database.url")?;
    let created = backup::create(config, &database, dir)
        .await
        .with_context(|| format!("backup into {} failed", dir.display()))?;
    let manifest = &created.manifest;
    let rows: u64 = manifest.tables.iter().map(|(_, n)| n).sum();
    eprintln!(
        "onebox: backup of {rows} rows ({} tables, schema {}) and {} files: {} bytes",
        manifest.tables.len(),
        if manifest.schema.is_empty() {
            "empty"
        } else {
            &manifest.schema
        },
        manifest.members.len(),
        created.size
    );
    if !created.encrypted {
        eprintln!(
            "onebox: the archive is not encrypted: the keys inside (DNSSEC, ACME, TLS) are \
             protected by its file mode (0600) only; set backup.passphrase_file to encrypt it"
        );
    }
    Ok(created)
}

/// `onebox restore FILE [--force]`.
pub(super) fn restore(cli: &Cli, file: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    ops::telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let runtime = small_runtime()?;
    match backup::restore(&config, file, force, &runtime) {
        Ok(restored) => {
            let manifest = &restored.manifest;
            let rows: u64 = manifest.tables.iter().map(|(_, n)| n).sum();
            let mut out = format!(
                "restored {} (onebox {}, taken {}): {rows} rows into {}, {} files\n",
                file.display(),
                manifest.onebox_version,
                manifest.created,
                db::redact(&config.database_url()),
                restored.files,
            );
            if restored.migrated > 0 {
                out.push_str(&format!(
                    "the archive's schema ({}) was older: {} migration(s) applied\n",
                    manifest.schema, restored.migrated
                ));
            }
            out.push_str(&format!(
                "its configuration is in {} (yours was kept)\n",
                restored.config.display()
            ));
            std::io::stdout().lock().write_all(out.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) if refusal(&error) => {
            eprintln!("onebox: {}: {}", file.display(), ops::chain(&error));
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            Err(anyhow::Error::new(error).context(format!("restore of {} failed", file.display())))
        }
    }
}

/// Whether the archive or the target was refused before anything changed (exit status 1).
fn refusal(error: &BackupError) -> bool {
    matches!(
        error,
        BackupError::Encrypted
            | BackupError::WrongPassphrase
            | BackupError::Damaged { .. }
            | BackupError::Truncated { .. }
            | BackupError::Checksum { .. }
            | BackupError::Missing { .. }
            | BackupError::Format(_)
            | BackupError::Newer { .. }
            | BackupError::NotEmpty(_)
    )
}

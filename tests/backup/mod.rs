//! Backup and restore (issue 15), end to end: the real binary's `backup` and `restore`
//! commands, on SQLite and on the suite's MariaDB, the site served again from what was
//! restored.
//!
//! - `round_trip`: a site with posts, an image, a user with an API token, the development
//!   certificate and a DNSSEC key, restored into a fresh box on the same engine or the
//!   other: the same API output, image, certificate and DS, the old password and token work;
//!   a backup under 8 writers keeps every post acknowledged before it;
//! - `refusals`: a changed byte, a truncated archive, a wrong passphrase, a target holding
//!   data: refused, the member named, the target untouched;
//! - `schema`: an archive of an older schema restores and is migrated, a newer one is
//!   refused; `migrate up` backs up first and a failed migration names the archive;
//! - `schedule`: `serve`'s scheduled backups, rotated; a failing one logged, counted in the
//!   metrics and reported by `doctor`.

mod refusals;
mod round_trip;
mod schedule;
mod schema;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The password of every user here.
pub const PASSWORD: &str = "correct horse battery";

/// A box's directories and configuration file, not necessarily serving.
pub struct BoxDirs {
    /// Holds everything.
    pub dir: tempfile::TempDir,
    /// The configuration file.
    pub config: PathBuf,
}

impl BoxDirs {
    /// A fresh box: empty `state/`, `zones/` and `site/` (none created yet), on `url`, with
    /// `extra` TOML appended.
    pub fn new(url: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("onebox.toml");
        let database = if url.is_empty() {
            String::new()
        } else {
            format!("[database]\nurl = '{url}'\n")
        };
        std::fs::write(
            &config,
            format!(
                "state_dir = '{state}'\n[log]\nformat = \"json\"\n[dns]\nzones_dir = '{zones}'\n\
                 [web]\nsite_dir = '{site}'\n{database}{extra}",
                state = dir.path().join("state").display(),
                zones = dir.path().join("zones").display(),
                site = dir.path().join("site").display(),
            ),
        )
        .expect("write config");
        Self { dir, config }
    }

    /// `path` under the box's directory.
    pub fn path(&self, path: &str) -> PathBuf {
        self.dir.path().join(path)
    }

    /// Runs `onebox --config CONFIG ARGS` with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli(&self.config, args, stdin)
    }
}

/// Runs `onebox --config CONFIG ARGS` with `stdin` as its standard input.
pub fn cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let dir = config.parent().expect("config's directory");
    crate::harness::onebox::cli(config, dir, args, stdin)
}

/// Standard output of a command that must succeed.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error of a command that must be refused with exit status 1.
pub fn refused(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    stderr
}

/// `onebox backup --to DIR` with `config`: the archive's path.
pub fn backup(config: &Path, to: &Path) -> PathBuf {
    let out = cli(config, &["backup", "--to", &to.display().to_string()], "");
    let path = PathBuf::from(ok(&out, "onebox backup").trim());
    assert!(path.is_file(), "{} is the archive", path.display());
    path
}

/// Every file under `dir` (relative path, content), sorted: what a restore must leave alone.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let name = path
                    .strip_prefix(base)
                    .expect("under base")
                    .display()
                    .to_string();
                out.push((name, std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

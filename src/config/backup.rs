//! `[backup]`: where `onebox backup` and `serve`'s scheduled backups go, how often, how many
//! are kept, and the passphrase that encrypts them.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[backup]`: scheduled backups and their encryption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// A file holding the passphrase (its first line) that encrypts archives with age
    /// (scrypt). Empty: archives are not encrypted, and only their file mode (0600) protects
    /// the keys inside.
    pub passphrase_file: PathBuf,
    /// How often `serve` takes a backup: `"daily"`, `"hourly"`, or a duration (`"6h"`,
    /// `"30min"`). Empty: never (only `onebox backup`).
    pub schedule: String,
    /// The directory scheduled backups are written to (created if missing).
    pub dir: PathBuf,
    /// How many scheduled backups are kept in `dir`; older ones are removed.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            passphrase_file: PathBuf::new(),
            schedule: String::new(),
            dir: PathBuf::from("backups"),
            keep: 7,
        }
    }
}

impl BackupConfig {
    /// The time between scheduled backups; `None` when none are scheduled.
    pub fn interval(&self) -> Option<Duration> {
        parse_schedule(&self.schedule).ok().flatten()
    }

    /// The rules serde's types cannot say: (key, message).
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        match parse_schedule(&self.schedule) {
            Err(why) => return Err(("backup.schedule", why)),
            Ok(Some(interval)) if interval < Duration::from_secs(1) => {
                return Err(("backup.schedule", "must be at least 1s".to_owned()));
            }
            Ok(_) => {}
        }
        if self.keep == 0 {
            return Err(("backup.keep", "must be at least 1".to_owned()));
        }
        if self.schedule.is_empty() || !self.dir.as_os_str().is_empty() {
            Ok(())
        } else {
            Err((
                "backup.dir",
                "must name a directory when backup.schedule is set".to_owned(),
            ))
        }
    }
}

/// `""` → none, `"daily"`, `"hourly"`, or a humantime duration.
fn parse_schedule(text: &str) -> Result<Option<Duration>, String> {
    match text.trim() {
        "" => Ok(None),
        "daily" => Ok(Some(Duration::from_secs(24 * 3600))),
        "hourly" => Ok(Some(Duration::from_secs(3600))),
        other => humantime_serde::re::humantime::parse_duration(other)
            .map(Some)
            .map_err(|e| {
                format!(
                    "\"daily\", \"hourly\" or a duration such as \"6h\" ({e}) (found \"{other}\")"
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(parse_schedule(""), Ok(None));
        assert_eq!(
            parse_schedule("daily"),
            Ok(Some(Duration::from_secs(86_400)))
        );
        assert_eq!(
            parse_schedule("hourly"),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(parse_schedule("6h"), Ok(Some(Duration::from_secs(21_600))));
        assert!(parse_schedule("weekly-ish").is_err());
    }
}

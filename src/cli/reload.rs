//! SIGHUP: the whole configuration re-read, and what can change live applied.
//!
//! 1. The file and the environment are read again (off the async workers); a configuration
//!    that no longer loads changes nothing.
//! 2. What only a restart (or an upgrade) applies keeps its running value, and the changed
//!    keys are named in one warning ([`live_part`]).
//! 3. The log level; the listen addresses (`ops::listen`: the new bound, the gone closed, the
//!    others the very same sockets); then every service reconfigures itself at once, each
//!    rebuilding its snapshots off the hot path and keeping the previous ones on error.

use super::serve::{Lifecycle, sockets};
use crate::config::Config;

impl Lifecycle {
    /// Re-reads the whole configuration and applies what can change live: listen addresses
    /// (the new bound, the gone closed), limits, the log level, then every snapshot rebuilt
    /// off the hot path (zones, site and certificates, templates), each keeping its previous
    /// version on error. What only a restart applies is named in one log line.
    pub(super) async fn reload(&mut self) {
        tracing::info!("reloading the configuration");
        let file = self.file.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(file.as_deref())).await;
        let new = match loaded {
            Ok(Ok(config)) => config,
            Ok(Err(error)) => {
                tracing::error!(%error, "reload failed; still serving the previous configuration");
                return;
            }
            Err(error) => {
                tracing::error!(%error, "reload failed; still serving the previous configuration");
                return;
            }
        };
        let (new, fixed) = live_part(new, &self.config);
        if !fixed.is_empty() {
            tracing::warn!(
                keys = fixed.join(", "),
                "these keys changed but apply only after a restart or an upgrade; their running values stay"
            );
        }
        if let Err(error) = self.log.set_level(&new.log.level) {
            tracing::error!(%error, "log level unchanged");
        }
        match self.listeners.update(&sockets(&new)) {
            Ok(changes) => {
                for socket in &changes.added {
                    if let Err(error) = self.serve(socket) {
                        tracing::error!(error = format!("{error:#}"), "a new socket is not served");
                    }
                }
                for socket in &changes.removed {
                    tracing::info!(
                        addr = %socket.local_addr(),
                        transport = %socket.spec().transport,
                        name = socket.spec().name,
                        "stopped listening"
                    );
                }
            }
            Err(error) => {
                tracing::error!(%error, "listen addresses unchanged; every other change applies");
            }
        }
        self.services.web.listening(self.listeners.iter());
        let templates = new.templates_dir();
        let services = &self.services;
        let app = async {
            if let Some(app) = &services.app {
                let _ = app.reload_templates(templates.as_deref()).await;
            }
        };
        tokio::join!(
            services.dns.reconfigure(&new.dns),
            services.web.reconfigure(&new),
            app,
        );
        self.config = new;
        tracing::info!("configuration reloaded");
    }
}

/// Splits a reloaded configuration into what applies live and what waits for a restart: the
/// returned configuration has the running values of the restart-only keys, which are listed.
///
/// Restart-only: `state_dir` (the development CA and the SQLite file live there),
/// `log.format`, the whole `[database]` (the pool) and `[app]` except `app.templates_dir`
/// (the application's state is built once). Everything else applies live.
fn live_part(mut new: Config, running: &Config) -> (Config, Vec<String>) {
    let mut fixed = Vec::new();
    if new.state_dir != running.state_dir {
        fixed.push("state_dir".to_owned());
        new.state_dir.clone_from(&running.state_dir);
    }
    if new.log.format != running.log.format {
        fixed.push("log.format".to_owned());
        new.log.format = running.log.format;
    }
    fixed.extend(changed_keys("database", &running.database, &new.database));
    new.database.clone_from(&running.database);
    let mut app = running.app.clone();
    app.templates_dir.clone_from(&new.app.templates_dir);
    fixed.extend(changed_keys("app", &app, &new.app));
    new.app = app;
    (new, fixed)
}

/// The keys of section `name` whose values differ between `old` and `new`.
fn changed_keys<T: serde::Serialize>(name: &str, old: &T, new: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    new.iter()
        .filter(|(key, value)| old.get(*key) != Some(value))
        .map(|(key, _)| format!("{name}.{key}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    #[test]
    fn restart_only_keys_keep_their_running_values_and_are_named() {
        let running = Config::default();
        let mut new = Config::default();
        new.database.max_connections = 3;
        new.app.posts_per_page = 5;
        new.app.templates_dir = PathBuf::from("elsewhere");
        new.web.hsts = String::new();
        new.dns.tcp_idle_timeout = Duration::from_secs(3);
        let (live, fixed) = live_part(new, &running);
        assert_eq!(fixed, ["database.max_connections", "app.posts_per_page"]);
        assert_eq!(live.database, running.database);
        assert_eq!(live.app.posts_per_page, running.app.posts_per_page);
        assert_eq!(live.app.templates_dir, PathBuf::from("elsewhere"));
        assert_eq!(live.web.hsts, "");
        assert_eq!(live.dns.tcp_idle_timeout, Duration::from_secs(3));
    }
}

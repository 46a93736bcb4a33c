//! Logging with `tracing`: one subscriber for the whole process, set up once by the binary,
//! with a filter that a reload can change ([`Log::set_level`]).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::config::{LogConfig, LogFormat};

/// The installed subscriber's handle: changes the level while the process runs.
#[derive(Debug, Clone)]
pub struct Log {
    filter: reload::Handle<EnvFilter, Registry>,
    /// `RUST_LOG` was set at start: it wins over `log.level`, now and on reloads.
    from_env: bool,
}

impl Log {
    /// Applies `log.level` (a reload); nothing when `RUST_LOG` decides.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        if self.from_env {
            return Ok(());
        }
        let filter = parse_level(level)?;
        self.filter
            .reload(filter)
            .map_err(|e| format!("cannot change the log level: {e}"))
    }
}

/// Checks `log.level` without installing anything (`onebox check`).
pub fn check(config: &LogConfig) -> Result<(), String> {
    parse_level(&config.level).map(drop)
}

/// `log.level` as a filter. rustls's own warnings are about what a client sent (an IP address
/// as SNI, say: one line per handshake from every scanner), so they show only at error unless
/// the level names `rustls` itself.
fn parse_level(level: &str) -> Result<EnvFilter, String> {
    let filter =
        EnvFilter::try_new(level).map_err(|e| format!("key log.level = {level:?}: {e}"))?;
    if level.contains("rustls") {
        return Ok(filter);
    }
    Ok(filter.add_directive(RUSTLS_QUIET.parse().map_err(|e| format!("{e}"))?))
}

/// See [`parse_level`].
const RUSTLS_QUIET: &str = "rustls=error";

/// Installs the global subscriber. `RUST_LOG` overrides `log.level` when set. Logs go to stderr
/// so that stdout stays free for command output (`onebox check`).
pub fn init(config: &LogConfig) -> Result<Log, String> {
    let (filter, from_env) = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => (
            EnvFilter::try_new(&directive).map_err(|e| format!("RUST_LOG={directive}: {e}"))?,
            true,
        ),
        _ => (parse_level(&config.level)?, false),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    let output = match config.format {
        LogFormat::Text => output.boxed(),
        LogFormat::Json => output.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(Log {
        filter: handle,
        from_env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_warnings_are_quiet_unless_the_level_names_rustls() {
        let quiet = parse_level("info").expect("info").to_string();
        assert!(quiet.contains(RUSTLS_QUIET), "{quiet}");
        let named = parse_level("info,rustls=debug").expect("named").to_string();
        assert!(!named.contains(RUSTLS_QUIET), "{named}");
        assert!(parse_level("info,=").is_err());
    }
}

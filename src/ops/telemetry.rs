//! Logging with `tracing`: one subscriber for the whole process, set up once by the binary.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG` overrides `log.level` when set. Logs go to stderr
/// so that stdout stays free for command output (`onebox check`).
pub fn init(config: &LogConfig) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) if !directive.is_empty() => {
            EnvFilter::try_new(&directive).map_err(|e| format!("RUST_LOG={directive}: {e}"))?
        }
        _ => EnvFilter::try_new(&config.level)
            .map_err(|e| format!("key log.level = {:?}: {e}", config.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    let result = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

//! [`Chain`]: an error and its causes as one line, `what: why: deeper why`.
//!
//! onebox's error types keep a cause in `source()` and out of their own message (thiserror's
//! `#[source]` or `transparent`, never both), so every place that shows an error to a person
//! (the command line's last line, a log entry) shows the whole chain through this. Some
//! libraries' errors do put their cause in their message as well (SeaORM's `Query Error: {0}`
//! with the same error as its source): a cause whose text already ends the line is not
//! repeated.

use std::error::Error;
use std::fmt;

/// Displays an error with its causes: `a: b: c`.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !text.is_empty() && !line.ends_with(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            cause = error.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `error` with its causes, for `tracing` fields (`error = %chain(&e)`) and messages.
pub fn chain<'a>(error: &'a (dyn Error + 'static)) -> Chain<'a> {
    Chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot bind 127.0.0.1:8080")]
    struct Bind(#[source] std::io::Error);

    /// A library error that repeats its cause in its own message.
    #[derive(Debug, thiserror::Error)]
    #[error("Query Error: {0}")]
    struct Noisy(#[source] std::io::Error);

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let shown = chain(&Bind(io())).to_string();
        assert_eq!(shown, format!("cannot bind 127.0.0.1:8080: {}", io()));
        let shown = chain(&Noisy(io())).to_string();
        assert_eq!(shown, format!("Query Error: {}", io()));
    }
}

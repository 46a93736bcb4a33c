//! onebox's log as the tests see it: the JSON lines it writes to stderr, kept as they arrive.
//!
//! Every entry is kept twice: as parsed JSON (tests of structured fields match on `message`,
//! `target` and the event's own fields) and rendered as one line of text, `LEVEL target:
//! message key=value ...`, for tests that look for words (a `file:line`, `zones reloaded`) and
//! for failure messages. A line that is not JSON (a panic, say) is kept as a JSON string.

use std::io::{BufRead, BufReader};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::DEADLINE;

/// The lines a child process wrote to stderr, shared with the thread that reads them.
#[derive(Default)]
pub struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    entries: Vec<Entry>,
    closed: bool,
}

#[derive(Clone)]
struct Entry {
    json: Value,
    text: String,
}

impl Log {
    /// Reads `stream` line by line into a new log, on a thread of its own.
    pub fn capture(stream: impl std::io::Read + Send + 'static) -> Arc<Self> {
        let log = Arc::new(Self::default());
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let json = serde_json::from_str(&line).unwrap_or(Value::String(line));
                let text = render(&json);
                let mut state = writer.state.lock().expect("log lock");
                state.entries.push(Entry { json, text });
                writer.changed.notify_all();
            }
            writer.state.lock().expect("log lock").closed = true;
            writer.changed.notify_all();
        });
        log
    }

    /// Every entry so far, as JSON.
    pub fn entries(&self) -> Vec<Value> {
        let state = self.state.lock().expect("log lock");
        state.entries.iter().map(|e| e.json.clone()).collect()
    }

    /// How many entries there are so far.
    pub fn line_count(&self) -> usize {
        self.state.lock().expect("log lock").entries.len()
    }

    /// Every entry so far, as text.
    pub fn lines(&self) -> Vec<String> {
        let state = self.state.lock().expect("log lock");
        state.entries.iter().map(|e| e.text.clone()).collect()
    }

    /// The whole log so far as text, one entry a line.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits until the `n`th entry (counting from 1) whose text satisfies `pred` is written, the
    /// stream closes, or `timeout` passes. Returns that entry's text.
    pub fn wait_for_nth(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        self.wait(0, n, timeout, |e| pred(&e.text)).map(|e| e.text)
    }

    /// Waits for the first entry whose text satisfies `pred`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_for_nth(1, timeout, pred)
    }

    /// Waits (up to [`DEADLINE`]) for an entry whose JSON satisfies `pred`.
    pub fn wait_json(&self, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.wait_json_after(0, pred)
    }

    /// Waits (up to [`DEADLINE`]) for the `n`th entry (counting from 1) whose JSON satisfies
    /// `pred`.
    pub fn wait_nth_json(&self, n: usize, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.wait(0, n, DEADLINE, |e| pred(&e.json)).map(|e| e.json)
    }

    /// Like [`wait_nth_json`](Self::wait_nth_json), waiting up to `timeout`.
    pub fn wait_nth_json_within(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.wait(0, n, timeout, |e| pred(&e.json)).map(|e| e.json)
    }

    /// Like [`wait_json`](Self::wait_json), looking only at entries after the first `skip`.
    pub fn wait_json_after(&self, skip: usize, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        self.wait(skip, 1, DEADLINE, |e| pred(&e.json))
            .map(|e| e.json)
    }

    /// Waits for the `n`th entry (counting from 1) after the first `skip` that satisfies
    /// `pred`, until the stream closes or `timeout` passes.
    fn wait(
        &self,
        skip: usize,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Entry) -> bool,
    ) -> Option<Entry> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().expect("log lock");
        loop {
            let found = state
                .entries
                .iter()
                .skip(skip)
                .filter(|e| pred(e))
                .nth(n - 1);
            if let Some(entry) = found {
                return Some(entry.clone());
            }
            let now = Instant::now();
            if state.closed || now >= deadline {
                return None;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .expect("log lock")
                .0;
        }
    }
}

/// One entry as a line of text: `LEVEL target: message key=value ...` (no timestamp).
fn render(json: &Value) -> String {
    let Value::Object(fields) = json else {
        return match json {
            Value::String(line) => line.clone(),
            other => other.to_string(),
        };
    };
    let plain = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut line = String::new();
    for key in ["level", "target"] {
        if let Some(value) = fields.get(key) {
            line.push_str(&plain(value));
            line.push_str(if key == "target" { ": " } else { " " });
        }
    }
    if let Some(message) = fields.get("message") {
        line.push_str(&plain(message));
    }
    for (key, value) in fields {
        if !matches!(key.as_str(), "timestamp" | "level" | "target" | "message") {
            line.push_str(&format!(" {key}={}", plain(value)));
        }
    }
    line
}

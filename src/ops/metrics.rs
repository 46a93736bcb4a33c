//! Metrics: a small registry that services register collectors into, rendered in Prometheus'
//! text exposition format (version 0.0.4) when `metrics.listen` is scraped.
//!
//! Counting costs the hot paths almost nothing, and nothing is shared between threads while
//! counting; the totals are summed when scraped:
//!
//! - [`Owned`]: counters written by one thread only (a DNS UDP worker): a plain load and store
//!   per increment, no atomic read-modify-write, on memory no other thread writes. Scrapes read
//!   them from another thread ([`OwnedView`]), which may see an increment a moment late, never
//!   a torn or lost one;
//! - [`Striped`]: counters written by many threads (the async runtime's workers serving TCP
//!   and HTTP): one stripe of cache lines per thread (threads beyond the stripes share), so
//!   that the atomic adds of two threads never contend for one line;
//! - [`Histogram`]: buckets over [`Striped`] counters, plus a sum.
//!
//! A service registers a [`Collect`] with the process's [`Registry`] (held by `ops::Context`)
//! and writes its families through an [`Encoder`] on each scrape: the samples of one family
//! together under one `# HELP` and `# TYPE`, label values escaped. What is state rather than a
//! count (zone serials, open connections, the database pool) is read at scrape time from where
//! it lives. [`Process`] adds the process's own figures (resident memory, open descriptors,
//! start time, uptime).

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::MetricsConfig;
use crate::ops::listen::{Spec, Transport};

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The socket `[metrics]` wants: one TCP listener on `metrics.listen`, unless it is empty.
pub fn sockets(config: &MetricsConfig) -> Vec<Spec> {
    config
        .listen
        .iter()
        .map(|&addr| Spec {
            name: "metrics",
            key: "metrics.listen",
            transport: Transport::Tcp,
            addr,
            index: 0,
        })
        .collect()
}

/// What a service registers: it writes its families on every scrape.
pub trait Collect: Send + Sync {
    /// Writes this collector's families to `out`.
    fn collect(&self, out: &mut Encoder);
}

impl<F: Fn(&mut Encoder) + Send + Sync> Collect for F {
    fn collect(&self, out: &mut Encoder) {
        self(out);
    }
}

/// The process's collectors, in the order registered. Cheap to clone.
#[derive(Clone, Default)]
pub struct Registry {
    collectors: Arc<Mutex<Vec<Arc<dyn Collect>>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Adds `collector`; it is asked on every scrape from now on.
    pub fn register(&self, collector: impl Collect + 'static) {
        self.lock().push(Arc::new(collector));
    }

    /// The exposition: every collector's families.
    pub fn render(&self) -> String {
        // Collectors run outside the lock: one that registers another cannot deadlock.
        let collectors = self.lock().clone();
        let mut out = Encoder::default();
        for collector in &collectors {
            collector.collect(&mut out);
        }
        out.text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn Collect>>> {
        self.collectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The kind of a family, as `# TYPE` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (from the process's start); its name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Buckets, a count and a sum.
    Histogram,
}

/// The exposition being written.
#[derive(Debug, Default)]
pub struct Encoder {
    text: String,
}

impl Encoder {
    /// Starts the family `name` (`onebox_dns_queries_total`); its samples follow.
    pub fn family(&mut self, name: &'static str, help: &str, kind: Kind) -> Family<'_> {
        let kind_name = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind_name}");
        Family { out: self, name }
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &'static str, help: &str, kind: Kind, value: impl Into<Value>) {
        self.family(name, help, kind).sample(&[], value);
    }
}

/// One family's samples.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut Encoder,
    name: &'static str,
}

impl Family<'_> {
    /// One sample with `labels` (names are the caller's constants; values are escaped).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.line(self.name, "", labels, None, value.into());
    }

    /// The samples of one histogram: `counts` per bucket of `bounds` (not cumulative), the
    /// last one for values above every bound; `sum` in the histogram's unit.
    pub fn histogram(&mut self, labels: &[(&str, &str)], bounds: &[f64], counts: &[u64], sum: f64) {
        let mut cumulative = 0u64;
        for (i, count) in counts.iter().enumerate() {
            cumulative += count;
            let le = bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| format_f64(*b));
            self.line(
                self.name,
                "_bucket",
                labels,
                Some(&le),
                Value::Int(cumulative),
            );
        }
        self.line(self.name, "_sum", labels, None, Value::Float(sum));
        self.line(self.name, "_count", labels, None, Value::Int(cumulative));
    }

    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        le: Option<&str>,
        value: Value,
    ) {
        let text = &mut self.out.text;
        text.push_str(name);
        text.push_str(suffix);
        if !labels.is_empty() || le.is_some() {
            text.push('{');
            let mut first = true;
            let le = le.map(|le| ("le", le));
            for (label, value) in labels.iter().copied().chain(le) {
                if !first {
                    text.push(',');
                }
                first = false;
                text.push_str(label);
                text.push_str("=\"");
                escape_label(text, value);
                text.push('"');
            }
            text.push('}');
        }
        text.push(' ');
        match value {
            Value::Int(v) => {
                let _ = write!(text, "{v}");
            }
            Value::Float(v) => text.push_str(&format_f64(v)),
        }
        text.push('\n');
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count or a whole number.
    Int(u64),
    /// Anything else (seconds, ratios); may be negative.
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Self::Int(v as u64)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(u64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

fn format_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Counters written by one thread only; [`Owned::view`] reads them from any thread.
#[derive(Debug)]
pub struct Owned {
    cells: Arc<[AtomicU64]>,
}

/// The reading side of [`Owned`] counters (what a collector keeps).
#[derive(Debug, Clone)]
pub struct OwnedView {
    cells: Arc<[AtomicU64]>,
}

impl Owned {
    /// `len` counters at zero.
    pub fn new(len: usize) -> Self {
        Self {
            cells: (0..len).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A reader of these counters.
    pub fn view(&self) -> OwnedView {
        OwnedView {
            cells: self.cells.clone(),
        }
    }

    /// Adds `n` to counter `i` (out of range: nothing). `&mut self`: this is the only writer,
    /// so a plain load and store suffice (no locked instruction).
    #[inline]
    pub fn add(&mut self, i: usize, n: u64) {
        if let Some(cell) = self.cells.get(i) {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }
}

impl OwnedView {
    /// Counter `i` now.
    pub fn get(&self, i: usize) -> u64 {
        self.cells.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// How many counters there are.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// Stripes of [`Striped`] counters: enough for the runtime's workers and a few other threads.
const STRIPES: usize = 16;
/// Counters per cache line pair (128 bytes: adjacent-line prefetching pulls lines in pairs).
const PER_LINE: usize = 16;

#[repr(align(128))]
#[derive(Debug, Default)]
struct Line([AtomicU64; PER_LINE]);

/// Counters written by many threads: each thread adds to its own stripe; reads sum them all.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Striped {
    lines: Arc<[Line]>,
    /// Lines per stripe.
    stride: usize,
    len: usize,
}

/// Which stripe this thread writes to, assigned on its first count.
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

impl Striped {
    /// `len` counters at zero.
    pub fn new(len: usize) -> Self {
        let stride = len.div_ceil(PER_LINE).max(1);
        Self {
            lines: (0..stride * STRIPES).map(|_| Line::default()).collect(),
            stride,
            len,
        }
    }

    /// Adds `n` to counter `i` (out of range: nothing).
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        if i >= self.len {
            return;
        }
        let line = &self.lines[stripe() * self.stride + i / PER_LINE];
        line.0[i % PER_LINE].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds 1 to counter `i`.
    #[inline]
    pub fn inc(&self, i: usize) {
        self.add(i, 1);
    }

    /// Counter `i` now: the sum of every stripe.
    pub fn get(&self, i: usize) -> u64 {
        if i >= self.len {
            return 0;
        }
        (0..STRIPES)
            .map(|s| {
                self.lines[s * self.stride + i / PER_LINE].0[i % PER_LINE].load(Ordering::Relaxed)
            })
            .fold(0u64, u64::wrapping_add)
    }

    /// How many counters there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Latency buckets, in seconds: from half a millisecond (a cached file) to ten seconds.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histograms of durations: `series` of them, each with the buckets of `bounds` (seconds), on
/// [`Striped`] counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per series: one count per bucket (the last: above every bound), then the sum in
    /// nanoseconds.
    cells: Striped,
}

impl Histogram {
    /// `series` histograms over `bounds` (ascending seconds).
    pub fn new(series: usize, bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            cells: Striped::new(series * (bounds.len() + 2)),
        }
    }

    fn width(&self) -> usize {
        self.bounds.len() + 2
    }

    /// Records `elapsed` in series `series`.
    #[inline]
    pub fn observe(&self, series: usize, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = self.bounds.partition_point(|&b| b < seconds);
        let base = series * self.width();
        self.cells.inc(base + bucket);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.cells.add(base + self.bounds.len() + 1, nanos);
    }

    /// Writes series `series` into `family` with `labels`, unless nothing was recorded in it.
    pub fn write(&self, family: &mut Family<'_>, series: usize, labels: &[(&str, &str)]) {
        let base = series * self.width();
        let counts: Vec<u64> = (0..=self.bounds.len())
            .map(|b| self.cells.get(base + b))
            .collect();
        if counts.iter().all(|&c| c == 0) {
            return;
        }
        let sum = self.cells.get(base + self.bounds.len() + 1) as f64 / 1e9;
        family.histogram(labels, self.bounds, &counts, sum);
    }
}

/// The process's own figures, under the names Prometheus' client libraries use
/// (`process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`), and
/// `onebox_uptime_seconds`.
#[derive(Debug)]
pub struct Process {
    started: Instant,
    started_at: SystemTime,
}

impl Process {
    /// The process as of now (its start: this moment).
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            started_at: SystemTime::now(),
        }
    }
}

impl Default for Process {
    fn default() -> Self {
        Self::new()
    }
}

impl Collect for Process {
    fn collect(&self, out: &mut Encoder) {
        if let Some(rss) = resident_bytes() {
            out.single(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                Kind::Gauge,
                rss,
            );
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own descriptor, open while it is read, is not counted.
            let open = fds.count().saturating_sub(1);
            out.single(
                "process_open_fds",
                "Number of open file descriptors.",
                Kind::Gauge,
                open,
            );
        }
        if let Some(max) = max_fds() {
            out.single(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                Kind::Gauge,
                max,
            );
        }
        let start = self
            .started_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        out.single(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Kind::Gauge,
            start,
        );
        out.single(
            "onebox_uptime_seconds",
            "Seconds since this onebox process started serving (an upgrade starts a new process).",
            Kind::Gauge,
            self.started.elapsed().as_secs_f64(),
        );
        out.single(
            "onebox_build_info",
            concat!(
                "Always 1; the version is onebox ",
                env!("CARGO_PKG_VERSION"),
                "."
            ),
            Kind::Gauge,
            1u64,
        );
    }
}

/// Resident set size, from `/proc/self/statm` (pages) and the page size.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The soft limit on open descriptors.
fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given, which lives for the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_in_the_text_format_with_escaped_labels() {
        let registry = Registry::default();
        let counts = Striped::new(2);
        counts.inc(1);
        counts.add(1, 2);
        let view = counts.clone();
        registry.register(move |out: &mut Encoder| {
            let mut family = out.family("t_requests_total", "Requests.", Kind::Counter);
            family.sample(&[("path", "a\"b\\c\nd")], view.get(1));
            family.sample(&[], view.get(0));
        });
        let text = registry.render();
        assert_eq!(
            text,
            "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n\
             t_requests_total{path=\"a\\\"b\\\\c\\nd\"} 3\nt_requests_total 0\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let histogram = Histogram::new(2, &[0.001, 0.01]);
        histogram.observe(1, Duration::from_micros(500));
        histogram.observe(1, Duration::from_millis(5));
        histogram.observe(1, Duration::from_millis(10));
        histogram.observe(1, Duration::from_secs(1));
        let mut out = Encoder::default();
        {
            let mut family = out.family("t_seconds", "Latency.", Kind::Histogram);
            histogram.write(&mut family, 0, &[("route", "static")]);
            histogram.write(&mut family, 1, &[("route", "app")]);
        }
        assert_eq!(
            out.text,
            "# HELP t_seconds Latency.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{route=\"app\",le=\"0.001\"} 1\n\
             t_seconds_bucket{route=\"app\",le=\"0.01\"} 3\n\
             t_seconds_bucket{route=\"app\",le=\"+Inf\"} 4\n\
             t_seconds_sum{route=\"app\"} 1.0155\n\
             t_seconds_count{route=\"app\"} 4\n"
        );
    }

    #[test]
    fn striped_counters_sum_every_thread_and_owned_ones_are_read_elsewhere() {
        let counts = Striped::new(40);
        std::thread::scope(|scope| {
            for _ in 0..20 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counts.inc(33);
                    }
                });
            }
        });
        assert_eq!(counts.get(33), 20_000);
        assert_eq!(counts.get(32), 0);
        counts.inc(40);
        assert_eq!(counts.get(40), 0, "out of range is ignored");

        let mut owned = Owned::new(3);
        let view = owned.view();
        std::thread::spawn(move || {
            for _ in 0..500 {
                owned.add(2, 2);
            }
        })
        .join()
        .expect("writer");
        assert_eq!(view.get(2), 1000);
    }

    #[test]
    fn the_process_reports_memory_descriptors_and_uptime() {
        let mut out = Encoder::default();
        Process::new().collect(&mut out);
        for name in [
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
            "onebox_uptime_seconds ",
        ] {
            assert!(out.text.contains(name), "{name} in {}", out.text);
        }
    }
}

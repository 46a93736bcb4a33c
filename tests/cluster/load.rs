//! The client's load: loops of `load.sh` on the client host (curl and getent, by name through
//! glibc and unbound), each writing one line per attempt to a file; read back and cut into
//! the scenario's phases afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::world::World;
use crate::harness::repo;

/// Seconds since the epoch, as `load.sh` writes them.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// One attempt of the load.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub start: f64,
    pub end: f64,
    /// `get`, `lookup` or `write`.
    pub kind: String,
    pub ok: bool,
    /// The path, name or slug.
    pub what: String,
    pub detail: String,
}

/// The running loops.
pub struct Load {
    stop: PathBuf,
    loops: Vec<(Child, PathBuf)>,
}

/// The paths every GET loop asks for, in turn: the home page, the blog and a post (all three
/// read from the database, through the page cache).
pub const PATHS: &[&str] = &["/", "/blog", "/blog/hello-cluster"];

impl Load {
    /// Starts two GET loops, one lookup loop and the editor's write loop.
    pub fn start(world: &World) -> Self {
        let dir = world.dir.path().join("load");
        std::fs::create_dir_all(&dir).expect("load dir");
        let stop = dir.join("STOP");
        let script = repo().join("tests/cluster/load.sh");
        let ca = world.ca.display().to_string();
        let stop_arg = stop.display().to_string();
        let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
        for _ in 0..2 {
            let mut args = vec!["get".to_owned(), stop_arg.clone(), ca.clone()];
            args.extend(PATHS.iter().map(|p| (*p).to_owned()));
            runs.push(("get", args));
        }
        runs.push(("lookup", vec!["lookup".to_owned(), stop_arg.clone()]));
        runs.push((
            "write",
            vec![
                "write".to_owned(),
                stop_arg.clone(),
                ca.clone(),
                world.token.clone(),
            ],
        ));
        let mut loops = Vec::new();
        for (n, (kind, args)) in runs.into_iter().enumerate() {
            let out = dir.join(format!("{n}-{kind}.txt"));
            let child = world
                .host("client")
                .command("bash")
                .arg(&script)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out).expect("load output"))
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start load.sh");
            loops.push((child, out));
        }
        Self { stop, loops }
    }

    /// Every attempt so far, by start time.
    pub fn attempts(&self) -> Vec<Attempt> {
        let mut all: Vec<Attempt> = self
            .loops
            .iter()
            .flat_map(|(_, path)| parse(path))
            .collect();
        all.sort_by(|a, b| a.start.total_cmp(&b.start));
        all
    }

    /// Stops the loops (each finishes its attempt) and returns every attempt.
    pub fn finish(mut self) -> Vec<Attempt> {
        std::fs::write(&self.stop, "").expect("STOP");
        for (child, _) in &mut self.loops {
            let _ = child.wait();
        }
        self.attempts()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "");
        for (child, _) in &mut self.loops {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The complete lines of one loop's output.
fn parse(path: &Path) -> Vec<Attempt> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            Some(Attempt {
                start: fields.next()?.parse().ok()?,
                end: fields.next()?.parse().ok()?,
                kind: fields.next()?.to_owned(),
                ok: fields.next()? == "ok",
                what: fields.next()?.to_owned(),
                detail: fields.next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// One phase's figures for one kind of attempt.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub ok: usize,
    pub failed: usize,
    /// The longest time without a successful completion (from the phase's start to the
    /// first, between two, from the last to the phase's end).
    pub longest_gap: Duration,
    /// The slowest successful attempt.
    pub slowest: Duration,
    /// The failures, for the report.
    pub failures: Vec<String>,
}

/// The figures of the attempts of `kind` that started in `[from, to)`.
pub fn figures(attempts: &[Attempt], kind: &str, from: f64, to: f64) -> Figures {
    let mut figures = Figures::default();
    let mut ends = vec![from];
    for attempt in attempts
        .iter()
        .filter(|a| a.kind == kind && a.start >= from && a.start < to)
    {
        if attempt.ok {
            figures.ok += 1;
            ends.push(attempt.end.min(to));
            let took = Duration::from_secs_f64((attempt.end - attempt.start).max(0.0));
            figures.slowest = figures.slowest.max(took);
        } else {
            figures.failed += 1;
            figures.failures.push(format!(
                "{kind} {} at +{:.2}s: {}",
                attempt.what,
                attempt.start - from,
                attempt.detail
            ));
        }
    }
    ends.push(to);
    ends.sort_by(f64::total_cmp);
    let gap = ends.windows(2).map(|w| w[1] - w[0]).fold(0.0_f64, f64::max);
    figures.longest_gap = Duration::from_secs_f64(gap.max(0.0));
    figures
}

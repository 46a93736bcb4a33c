//! Binary upgrade, nginx's model: the running process starts the binary on disk with its
//! listening sockets (the same kernel sockets: UDP, TCP, HTTPS), waits until the new process
//! says it is ready, then drains and exits; if the new one fails, the old one goes on serving
//! and says why.
//!
//! The hand-over, both sides:
//!
//! 1. the old process ([`start`]) makes a pipe, and starts the binary it was started from (the
//!    same path and arguments) with the pipe's write end and every listening socket left open
//!    across `exec`, described in the environment variable [`VAR`]:
//!    `parent=<pid> ready=<fd> fds=<fd>:<name>,...` (names as in `ops::listen`);
//! 2. the new process takes the sockets (`ops::listen::Inherited::from_env`, which believes
//!    the variable only when `parent` is its parent), builds, serves, and then writes `ready`
//!    on the pipe ([`Parent::ready`]); if it cannot start, it writes `failed: <why>`
//!    ([`Parent::failed`]) and exits;
//! 3. the old process reads the pipe ([`Upgrade::outcome`]): `ready` hands over (the caller
//!    then tells systemd the new main PID and drains); anything else, the pipe closing, the
//!    child exiting or [`READY_TIMEOUT`] passing is a failure whose reason is returned, and
//!    the child is stopped.
//!
//! The new process runs with the old one's privileges (after the switch to `user`): every
//! socket it needs is inherited, and only addresses new in its configuration are bound.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable of the hand-over (not configuration, though it starts with
/// `ONEBOX_`).
pub const VAR: &str = "ONEBOX_UPGRADE";

/// How long the new process may take to be ready (it loads every zone first).
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Why an upgrade did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The new process could not be started at all.
    #[error("cannot start {exe}")]
    Spawn {
        /// The binary.
        exe: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The new process said it cannot start.
    #[error("the new process (pid {pid}) did not start: {reason}")]
    Failed {
        /// Its pid.
        pid: u32,
        /// What it said, or how it ended.
        reason: String,
    },
    /// The new process took too long.
    #[error("the new process (pid {pid}) was not ready within {after:?}; stopped it")]
    TimedOut {
        /// Its pid.
        pid: u32,
        /// The timeout.
        after: Duration,
    },
}

/// The binary and arguments this process was started with, to start again on upgrade.
#[derive(Debug, Clone)]
pub struct Binary {
    exe: PathBuf,
    args: Vec<OsString>,
}

impl Binary {
    /// This process's binary (resolved now: after the file is replaced, `/proc/self/exe` no
    /// longer names it) and arguments.
    pub fn current() -> io::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe()?,
            args: std::env::args_os().skip(1).collect(),
        })
    }
}

/// An upgrade under way: the new process and the read end of its pipe.
#[derive(Debug)]
pub struct Upgrade {
    child: Child,
    ready: File,
}

/// Starts `binary` with `sockets` (name and descriptor each) and a readiness pipe.
pub fn start(binary: &Binary, sockets: &[(&str, BorrowedFd<'_>)]) -> Result<Upgrade, UpgradeError> {
    let spawn_error = |source| UpgradeError::Spawn {
        exe: binary.exe.clone(),
        source,
    };
    let (read, write) = pipe().map_err(spawn_error)?;
    let mut fds: Vec<RawFd> = sockets.iter().map(|(_, fd)| fd.as_raw_fd()).collect();
    fds.push(write.as_raw_fd());
    let described: Vec<String> = sockets
        .iter()
        .map(|(name, fd)| format!("{}:{name}", fd.as_raw_fd()))
        .collect();
    let value = format!(
        "parent={} ready={} fds={}",
        std::process::id(),
        write.as_raw_fd(),
        described.join(",")
    );
    let mut command = Command::new(&binary.exe);
    command
        .args(&binary.args)
        .env(VAR, value)
        // systemd's own variables describe this process's start, not the new one's.
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, and only calls fcntl, which
    // is async-signal-safe, on descriptors that are open in the parent (held by `sockets` and
    // `write` for the whole call).
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(spawn_error)?;
    drop(write);
    Ok(Upgrade {
        child,
        ready: File::from(read),
    })
}

impl Upgrade {
    /// The new process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (off the async workers) until the new process is ready; on any failure it is
    /// stopped and reaped, and the reason returned.
    pub async fn outcome(self) -> Result<u32, UpgradeError> {
        let pid = self.child.id();
        let Self { mut child, ready } = self;
        let reader = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let read = BufReader::new(ready).read_line(&mut line);
            (read, line)
        });
        let said = tokio::time::timeout(READY_TIMEOUT, reader).await;
        let reason = match said {
            Ok(Ok((Ok(_), line))) if line.trim_end() == "ready" => {
                // The child is on its own now; it outlives this process.
                drop(child);
                return Ok(pid);
            }
            Ok(Ok((Ok(_), line))) if line.starts_with("failed: ") => {
                line["failed: ".len()..].trim_end().to_owned()
            }
            Ok(Ok((_, _))) => String::new(),
            Ok(Err(_)) => "its readiness could not be read".to_owned(),
            Err(_) => {
                stop(&mut child);
                return Err(UpgradeError::TimedOut {
                    pid,
                    after: READY_TIMEOUT,
                });
            }
        };
        let status = stop(&mut child);
        let reason = match (reason.is_empty(), status) {
            (false, _) => reason,
            (true, Some(status)) => format!("it exited ({status}) before it was ready"),
            (true, None) => "it closed its readiness pipe before it was ready".to_owned(),
        };
        Err(UpgradeError::Failed { pid, reason })
    }
}

/// Stops `child` if it still runs (SIGTERM, then SIGKILL after 5 s) and reaps it.
fn stop(child: &mut Child) -> Option<std::process::ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
    }
    let _ = child.kill();
    child.wait().ok()
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made by pipe2 and belong to nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What [`VAR`] says, when it was set by this process's parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The readiness pipe's write end.
    pub ready: RawFd,
    /// The sockets: descriptor and name.
    pub sockets: Vec<(RawFd, String)>,
}

impl Handoff {
    /// Reads [`VAR`]; `None` unless it is there, well-formed and names this process's parent.
    pub fn from_env() -> Option<Self> {
        let value = std::env::var(VAR).ok()?;
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() };
        Self::parse(&value, parent)
    }

    fn parse(value: &str, parent: i32) -> Option<Self> {
        let mut from = None;
        let mut ready = None;
        let mut sockets = Vec::new();
        for field in value.split_whitespace() {
            let (key, val) = field.split_once('=')?;
            match key {
                "parent" => from = val.parse::<i32>().ok(),
                "ready" => ready = val.parse::<RawFd>().ok(),
                "fds" => {
                    for entry in val.split(',').filter(|e| !e.is_empty()) {
                        let (fd, name) = entry.split_once(':')?;
                        sockets.push((fd.parse().ok()?, name.to_owned()));
                    }
                }
                _ => {}
            }
        }
        (from? == parent).then_some(Self {
            ready: ready?,
            sockets,
        })
    }
}

/// The new process's side of the pipe: it tells the old process how the start went.
#[derive(Debug)]
pub struct Parent {
    pipe: Option<File>,
}

impl Parent {
    /// The pipe of a hand-over from this process's parent, if any (taken once: its descriptor
    /// is owned from here on).
    pub fn from_env() -> Option<Self> {
        let handoff = Handoff::from_env()?;
        // SAFETY: fcntl(F_GETFD) only queries the descriptor table.
        if unsafe { libc::fcntl(handoff.ready, libc::F_GETFD) } < 0 {
            return None;
        }
        // SAFETY: the descriptor is open (checked above) and was passed to this process for
        // it alone to own.
        let pipe = File::from(unsafe { OwnedFd::from_raw_fd(handoff.ready) });
        // Not for this process's own children (a later upgrade makes its own).
        let _ = set_cloexec(&pipe);
        Some(Self { pipe: Some(pipe) })
    }

    /// Tells the old process this one serves: it may drain and exit.
    pub fn ready(&mut self) {
        self.say("ready\n");
    }

    /// Tells the old process this one cannot start, and why.
    pub fn failed(&mut self, reason: &str) {
        self.say(&format!("failed: {}\n", reason.replace('\n', "; ")));
    }

    fn say(&mut self, line: &str) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(line.as_bytes());
        }
    }
}

fn set_cloexec(file: &File) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor `file` owns.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_is_believed_only_from_the_parent() {
        let value = "parent=42 ready=9 fds=5:dns,6:dns,7:https";
        let handoff = Handoff::parse(value, 42).expect("parsed");
        assert_eq!(handoff.ready, 9);
        assert_eq!(
            handoff.sockets,
            [
                (5, "dns".to_owned()),
                (6, "dns".to_owned()),
                (7, "https".to_owned())
            ]
        );
        assert_eq!(Handoff::parse(value, 43), None, "another parent's");
        assert_eq!(Handoff::parse("parent=42 fds=5:dns", 42), None, "no pipe");
        assert_eq!(
            Handoff::parse("parent=42 ready=9 fds=", 42).map(|h| h.sockets.len()),
            Some(0)
        );
    }
}

//! PHP-FPM: Debian's `php-fpm8.2` in the foreground (`--nodaemonize`) from a temporary
//! directory, one static pool listening on a loopback port of its own, serving the scripts
//! of a directory the test writes. No system service is touched.
//!
//! It runs in a process group of its own (the master and its pool workers); dropping a
//! [`PhpFpm`] asks the master to stop (SIGTERM), then kills whatever of the group is left
//! (SIGKILL), so that no worker outlives the test, whatever state it was in.
//! [`PhpFpm::start_in`] runs it inside a network namespace (the browser test's server host).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::onebox::current_user;
use super::{free_port, poll};

/// The binary Debian installs (package php8.2-fpm).
const BINARY: &str = "/usr/sbin/php-fpm8.2";

/// A running PHP-FPM; stopped when dropped.
pub struct PhpFpm {
    child: Child,
    /// Its process group (the master's pid).
    group: libc::pid_t,
    /// Where it listens (FastCGI), in its network namespace.
    pub addr: SocketAddr,
    /// The directory its scripts are in (what `fastcgi_root` names).
    pub root: PathBuf,
    dir: tempfile::TempDir,
}

impl PhpFpm {
    /// Starts a pool of `workers` serving the scripts `files` (path under the root, PHP
    /// source) from a new directory.
    pub fn start(files: &[(&str, &str)], workers: usize) -> Self {
        Self::start_in(&[], files, workers)
    }

    /// [`PhpFpm::start`] with the command run after `prefix` (`ip netns exec NAME`, which
    /// execs it: the pid stays PHP-FPM's). It listens on that namespace's loopback; it is
    /// ready when its log says so.
    pub fn start_in(prefix: &[&str], files: &[(&str, &str)], workers: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("www");
        std::fs::create_dir(&root).expect("www dir");
        for (name, source) in files {
            let path = root.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("script dir");
            }
            std::fs::write(path, source).expect("write script");
        }
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let log = dir.path().join("fpm.log");
        let config = format!(
            "[global]\npid = {pid}\nerror_log = {log}\ndaemonize = no\nlog_level = notice\n\n\
             [app]\nlisten = {addr}\nuser = {user}\npm = static\npm.max_children = {workers}\n\
             catch_workers_output = yes\nphp_admin_value[post_max_size] = 0\n\
             php_admin_value[output_buffering] = 0\n",
            pid = dir.path().join("fpm.pid").display(),
            log = log.display(),
            user = current_user(),
        );
        let conf = dir.path().join("fpm.conf");
        std::fs::write(&conf, config).expect("write fpm.conf");
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BINARY);
                command
            }
            None => Command::new(BINARY),
        };
        // -R: the suite runs as root in CI; PHP-FPM refuses root without it.
        let child = command
            .args(["--nodaemonize", "-R", "-n", "-y"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{BINARY} (package php8.2-fpm): {e}"));
        let group = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        let mut fpm = Self {
            child,
            group,
            addr,
            root,
            dir,
        };
        let up = if prefix.is_empty() {
            poll(|| std::net::TcpStream::connect(addr).ok().map(drop))
        } else {
            poll(|| {
                fpm.log()
                    .contains("ready to handle connections")
                    .then_some(())
            })
        };
        if up.is_none() || fpm.child.try_wait().ok().flatten().is_some() {
            panic!("PHP-FPM did not start:\n{}", fpm.log());
        }
        fpm
    }

    /// Its log (errors, and what scripts wrote to stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fpm.log")).unwrap_or_default()
    }

    /// The script root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The process group: the master and its pool workers.
    pub fn process_group(&self) -> libc::pid_t {
        self.group
    }
}

impl Drop for PhpFpm {
    /// SIGTERM to the master: it stops its workers and exits. Then SIGKILL to the whole group,
    /// for workers it did not stop (busy, or the master killed first), before the master is
    /// reaped (so the group's id cannot have been reused).
    fn drop(&mut self) {
        // SAFETY: kill(2) on the child this value started and has not reaped.
        unsafe { libc::kill(self.group, libc::SIGTERM) };
        // Exited (a zombie until reaped) or not: either way the rest of the group goes.
        let _ = poll(|| {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.group)).ok()?;
            // The state follows the parenthesised command name: Z is a zombie.
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            (state == 'Z').then_some(())
        });
        // SAFETY: kill(2) on the process group this value created; its leader is not reaped
        // yet, so the group id is still ours.
        unsafe { libc::kill(-self.group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// The processes in process group `group` now (from `/proc`), zombies excluded.
pub fn processes_in_group(group: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .parse::<libc::pid_t>()
                .ok()
        })
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the parenthesised name: state, ppid, pgrp.
            let mut fields = stat
                .rsplit_once(')')
                .map_or("", |(_, rest)| rest)
                .split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|g| g.parse::<libc::pid_t>().ok());
            state != Some("Z") && pgrp == Some(group)
        })
        .collect()
}

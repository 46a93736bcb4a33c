//! PHP-FPM: Debian's `php-fpm8.2` in the foreground (`--nodaemonize`) from a temporary
//! directory, one static pool listening on a loopback port of its own, serving the scripts
//! of a directory the test writes. No system service is touched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::onebox::current_user;
use super::{free_port, poll};

/// The binary Debian installs (package php8.2-fpm).
const BINARY: &str = "/usr/sbin/php-fpm8.2";

/// A running PHP-FPM; stopped when dropped.
pub struct PhpFpm {
    child: Child,
    /// Where it listens (FastCGI).
    pub addr: SocketAddr,
    /// The directory its scripts are in (what `fastcgi_root` names).
    pub root: PathBuf,
    dir: tempfile::TempDir,
}

impl PhpFpm {
    /// Starts a pool of `workers` serving the scripts `files` (path under the root, PHP
    /// source) from a new directory.
    pub fn start(files: &[(&str, &str)], workers: usize) -> Self {
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
            "[global]\npid = {pid}\nerror_log = {log}\ndaemonize = no\n\n\
             [app]\nlisten = {addr}\nuser = {user}\npm = static\npm.max_children = {workers}\n\
             catch_workers_output = yes\nphp_admin_value[post_max_size] = 0\n\
             php_admin_value[output_buffering] = 0\n",
            pid = dir.path().join("fpm.pid").display(),
            log = log.display(),
            user = current_user(),
        );
        let conf = dir.path().join("fpm.conf");
        std::fs::write(&conf, config).expect("write fpm.conf");
        // -R: the suite runs as root in CI; PHP-FPM refuses root without it.
        let child = Command::new(BINARY)
            .args(["--nodaemonize", "-R", "-n", "-y"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{BINARY} (package php8.2-fpm): {e}"));
        let mut fpm = Self {
            child,
            addr,
            root,
            dir,
        };
        let up = poll(|| std::net::TcpStream::connect(addr).ok());
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
}

impl Drop for PhpFpm {
    /// SIGTERM: the master stops its workers and exits (SIGKILL would leave the workers
    /// serving the listening socket).
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the child this value started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let stopped = poll(|| self.child.try_wait().ok().flatten());
        if stopped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! The suite's MariaDB: a throwaway server of its own, so that `make test` needs no database
//! set up beforehand and never touches the machine's (issue 4).
//!
//! - [`MariaDb::start`] makes a private server: a temporary directory, a copy of a datadir that
//!   `mariadb-install-db` initialised once per process (root with an empty password, normal
//!   authentication), `mariadbd` on a free loopback port and a socket in that directory.
//!   [`MariaDb::stop`] and [`MariaDb::start_again`] (same datadir, same port) are for outage
//!   tests; dropping it kills the server and removes the directory.
//! - [`shared`] is the one server of the whole test process, for every ordinary test; each test
//!   takes a database of its own from it with [`Shared::create_database`] (`t_<pid>_<n>`,
//!   utf8mb4) and hands the returned URL (`mysql://root@127.0.0.1:<port>/<db>`) to onebox.
//! - With `ONEBOX_TEST_MYSQL_URL=mysql://user:pass@host:port/db` set, [`shared`] uses that
//!   server instead (the per-test databases are created on it; the URL's own database is not
//!   used, so the user needs the right to create and drop databases). They are dropped when the
//!   test process exits normally.
//! - [`sql`] runs statements with the `mariadb` client over TCP against any of these URLs, with
//!   the URL's credentials: how tests look at what onebox wrote, through the same door.
//!
//! Without a server binary and without the variable the suite stops with [`NO_MARIADB`], which
//! says what to install.
//!
//! **Nothing outlives the test process.** Every server is spawned from one thread that lives as
//! long as the process (the "spawner"), with `PR_SET_PDEATHSIG(SIGKILL)`: the kernel ties that
//! signal to the thread that forked, so spawning from a test's own thread would kill a shared
//! server when its first test ends, and spawning from the spawner kills every server when the
//! process ends, however it ends. A `static` is never dropped, so the shared server's directory
//! and the template datadir are removed by an `atexit` handler (normal exit and
//! `process::exit`, which libtest uses when a test failed): it kills the server, reaps it, then
//! removes the directories. What a killed test process leaves behind (Ctrl-C, SIGKILL) are
//! directories whose `owner` file names a dead process: the next start of a server sweeps those
//! away ([`sweep_stale_dirs`]).
//!
//! **Fast start.** InnoDB is made small (32 MB buffer pool, 8 MB redo log) and lax about
//! durability (no doublewrite, redo log flushed once a second, no buffer-pool dump): a test
//! database lives for seconds and a clean stop still keeps everything. Name resolution is off.
//! `mariadb-install-db` takes 0.6–1.5 s (more on a loaded machine), so it runs once per process
//! and each server gets a copy (~0.1 s); the server itself is up ~0.15–0.3 s after it starts.
//! `max_connections` is raised to 1000 because every test's onebox brings a connection pool.
//! `--no-defaults` keeps the distribution's my.cnf out, which also means latin1 as the server's
//! default character set: the server is told utf8mb4, and every database is created as utf8mb4.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, Instant};

use super::{DEADLINE, free_port};

mod client;

pub use client::{NO_CLIENT, ServerUrl, database_name, sql, try_sql};
use client::{Route, client, client_sql, create_database, mask};

/// What the suite says when it has no MariaDB at all.
pub const NO_MARIADB: &str = "no MariaDB for the tests: install mariadb-server (apt-get install \
     mariadb-server) or set ONEBOX_TEST_MYSQL_URL=mysql://user:pass@host:port/db";

/// The variable naming a server to use instead of a throwaway one.
pub const URL_VAR: &str = "ONEBOX_TEST_MYSQL_URL";

/// Temporary directories of throwaway servers start with this (see [`sweep_stale_dirs`]).
const DIR_PREFIX: &str = "onebox-mariadb-";

/// InnoDB settings for both `mariadb-install-db` and `mariadbd` (a different redo log size at
/// start would make the server resize it). `loose-`: an older or newer server that lacks one
/// ignores it instead of refusing to start.
const INNODB: &[&str] = &[
    "--innodb-buffer-pool-size=32M",
    "--loose-innodb-log-file-size=8M",
    "--loose-innodb-doublewrite=0",
    "--loose-innodb-flush-log-at-trx-commit=2",
    "--loose-innodb-buffer-pool-load-at-startup=0",
    "--loose-innodb-buffer-pool-dump-at-shutdown=0",
    "--skip-log-bin",
];

/// The MariaDB programs the harness runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `mariadbd` (or `mysqld`).
    pub server: PathBuf,
    /// `mariadb-install-db` (or `mysql_install_db`).
    pub install_db: PathBuf,
    /// `mariadb` (or `mysql`), the client.
    pub client: PathBuf,
}

impl Binaries {
    /// Finds the programs in `dirs`, preferring the `mariadb*` names. Err is [`NO_MARIADB`] or
    /// [`NO_CLIENT`].
    pub fn find_in(dirs: &[PathBuf]) -> Result<Self, String> {
        let server = find(dirs, &["mariadbd", "mysqld"]);
        let install_db = find(dirs, &["mariadb-install-db", "mysql_install_db"]);
        let client = find(dirs, &["mariadb", "mysql"]);
        match (server, install_db, client) {
            (Some(server), Some(install_db), Some(client)) => Ok(Self {
                server,
                install_db,
                client,
            }),
            (None, _, _) | (_, None, _) => Err(NO_MARIADB.to_owned()),
            (_, _, None) => Err(NO_CLIENT.to_owned()),
        }
    }

    /// The programs in `PATH`, `/usr/sbin` and `/usr/local/sbin` (found once per process).
    pub fn get() -> Result<&'static Self, String> {
        static FOUND: OnceLock<Result<Binaries, String>> = OnceLock::new();
        FOUND
            .get_or_init(|| Self::find_in(&search_dirs()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Where programs are looked for: `PATH`, then the sbin directories a user's `PATH` may lack.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    for extra in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(PathBuf::from(extra));
        }
    }
    dirs
}

/// The first executable file named like one of `names` (in order of preference) in `dirs`.
fn find(dirs: &[PathBuf], names: &[&str]) -> Option<PathBuf> {
    names.iter().find_map(|name| {
        dirs.iter().map(|dir| dir.join(name)).find(|path| {
            std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from the spawner thread, which lives as long as the process, with
/// `PR_SET_PDEATHSIG(SIGKILL)`: the child dies with the process however it ends.
fn spawn_tied(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("mariadb-spawner".to_owned())
            .spawn(move || {
                // The sender sits in a static and is never dropped: this loop never ends.
                for (mut command, reply) in requests {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawn the spawner thread");
        sender
    });
    let parent = std::process::id();
    // SAFETY: the closure makes two system calls and allocates nothing, as is required between
    // fork and exec.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The process may have died between fork and prctl: then no signal will come.
            if u32::try_from(libc::getppid()) != Ok(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    };
    let (reply, answer) = mpsc::channel();
    let gone = || io::Error::other("the spawner thread is gone");
    spawner.send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// Removes the directories of throwaway servers whose test process is gone (killed before it
/// could clean up). Their servers died with it (`PR_SET_PDEATHSIG`). Runs by itself at the first
/// start of a server in a process; safe to call again.
pub fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        // No owner yet: a directory being set up right now by someone else.
        let Ok(owner) = std::fs::read_to_string(path.join("owner")) else {
            continue;
        };
        let Ok(pid) = owner.trim().parse::<libc::pid_t>() else {
            continue;
        };
        // SAFETY: kill(2) with signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A new directory for a server (or the template), with an `owner` file naming this process
/// for [`sweep_stale_dirs`], which runs first, once per process.
fn server_dir() -> tempfile::TempDir {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep_stale_dirs);
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .expect("temp dir");
    std::fs::write(dir.path().join("owner"), std::process::id().to_string()).expect("write owner");
    let socket = dir.path().join("sock");
    assert!(
        socket.as_os_str().len() < 100,
        "{} is too long for a Unix socket: set TMPDIR to a shorter directory",
        socket.display()
    );
    dir
}

/// The directory holding `data/`, a datadir fresh from `mariadb-install-db`: made once per
/// process, then copied for each server (a copy takes a fraction of the install's time). A
/// static, removed at exit like the shared server's.
fn template(bins: &Binaries) -> &'static Path {
    TEMPLATE
        .get_or_init(|| {
            let dir = server_dir();
            let began = Instant::now();
            install_db(bins, dir.path());
            eprintln!("mariadb: datadir initialised in {:?}", began.elapsed());
            clean_up_at_exit();
            dir
        })
        .path()
}

/// The template datadir's directory (see [`template`]).
static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();

/// Copies the directory tree `from` to `to` (which must not exist).
fn copy_dir(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Initialises a datadir in `dir/data` with `mariadb-install-db`.
fn install_db(bins: &Binaries, dir: &Path) {
    let mut command = Command::new(&bins.install_db);
    command
        .arg("--no-defaults")
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .arg(format!("--datadir={}", dir.join("data").display()))
        // Its temporary tables, too, stay in the directory (not in a /tmp shared with others).
        .arg(format!("--tmpdir={}", dir.display()))
        .args(INNODB)
        .args(as_root())
        .stdin(Stdio::null());
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bins.install_db.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        bins.install_db.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The last `lines` lines of the file at `path` (empty if it cannot be read).
fn tail(path: &Path, lines: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A throwaway MariaDB server of the test's own, on a loopback port; killed and its directory
/// removed when dropped.
pub struct MariaDb {
    bins: &'static Binaries,
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
}

impl MariaDb {
    /// Makes a datadir (a copy of the process's template) and starts a server on a free port;
    /// waits until root can connect over TCP. Panics with [`NO_MARIADB`] without the programs, or with the server's error log
    /// if it does not come up within [`DEADLINE`].
    pub fn start() -> Self {
        let bins = Binaries::get().unwrap_or_else(|e| {
            if std::env::var_os(URL_VAR).is_some() {
                panic!("{e}\n(outage tests start a private server even with {URL_VAR} set)")
            }
            panic!("{e}")
        });
        let began = Instant::now();
        let template = template(bins);
        let dir = server_dir();
        copy_dir(&template.join("data"), &dir.path().join("data"))
            .unwrap_or_else(|e| panic!("cannot copy the template datadir: {e}"));
        let copied = began.elapsed();
        let mut server = Self {
            bins,
            dir,
            child: None,
            port: 0,
        };
        // Another test may take the free port before the server binds it: try another.
        for attempt in 1.. {
            server.port = free_port();
            match server.launch() {
                Ok(()) => break,
                Err(log) if attempt < 4 && log.contains("already in use") => {}
                Err(log) => panic!("mariadbd did not start:\n{log}"),
            }
        }
        server.allow_root_over_tcp();
        eprintln!(
            "mariadb: datadir ready after {copied:?}, server up {:?} later, port {}",
            began.elapsed() - copied,
            server.port
        );
        server
    }

    /// Starts `mariadbd` on the datadir and port; Ok once it answers on its socket. Err holds
    /// the tail of its logs (and the server is not running).
    fn launch(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let output = std::fs::File::create(dir.join("output.log")).expect("output log");
        let mut command = Command::new(&self.bins.server);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--tmpdir={}", dir.display()))
            .args(INNODB)
            .args([
                "--skip-name-resolve",
                "--max-connections=1000",
                "--character-set-server=utf8mb4",
            ])
            .args(as_root())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("output log"))
            .stderr(output);
        let child = spawn_tied(command)
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bins.server.display()));
        self.child = Some(child);
        let route = Route::Socket(dir.join("sock"));
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!("mariadbd exited ({status}):\n{}", self.logs()));
            }
            if dir.join("sock").exists()
                && client_sql(&self.bins.client, &route, None, "SELECT 1").is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "mariadbd did not accept connections within {DEADLINE:?}:\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Makes sure `root` with no password may connect from 127.0.0.1 (install-db's accounts
    /// usually allow it; if not, adds `root@127.0.0.1` through the socket).
    fn allow_root_over_tcp(&self) {
        let tcp = Route::Tcp(ServerUrl::parse(&self.url()).expect("own URL"));
        if client_sql(&self.bins.client, &tcp, None, "SELECT 1").is_ok() {
            return;
        }
        let socket = Route::Socket(self.dir.path().join("sock"));
        client_sql(
            &self.bins.client,
            &socket,
            None,
            "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; \
             GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
        )
        .unwrap_or_else(|e| panic!("cannot add root@127.0.0.1: {e}"));
        if let Err(e) = client_sql(&self.bins.client, &tcp, None, "SELECT 1") {
            panic!("root cannot connect over TCP: {e}\n{}", self.logs());
        }
    }

    /// The tails of the error log and of the server's output.
    fn logs(&self) -> String {
        let dir = self.dir.path();
        format!(
            "error.log:\n{}\noutput:\n{}",
            tail(&dir.join("error.log"), 30),
            tail(&dir.join("output.log"), 10)
        )
    }

    /// The port it listens on (the same after [`start_again`](Self::start_again)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its TCP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's URL, without a database: `mysql://root@127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Creates a fresh database (`t_<pid>_<n>`, utf8mb4) and returns its URL.
    pub fn create_database(&self) -> String {
        let name = create_database(
            &self.bins.client,
            &Route::Socket(self.dir.path().join("sock")),
        );
        format!("{}/{name}", self.url())
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Stops the server cleanly (SIGTERM) and waits for it to exit; a no-op if it is stopped.
    /// Panics (after SIGKILL) if it does not exit within [`DEADLINE`].
    pub fn stop(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        panic!(
            "mariadbd did not stop within {DEADLINE:?}:\n{}",
            self.logs()
        );
    }

    /// Starts the stopped server again on the same datadir and port; waits until it accepts
    /// connections. Panics with its log if it cannot (e.g. something else took the port).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: the server is running");
        if let Err(log) = self.launch() {
            panic!("mariadbd did not start again on port {}:\n{log}", self.port);
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // A throwaway: no clean shutdown needed. The directory goes with `self.dir`.
        self.kill();
    }
}

/// `--user=root` when running as root (mariadbd refuses root without it).
fn as_root() -> Option<&'static str> {
    // SAFETY: geteuid(2) cannot fail.
    (unsafe { libc::geteuid() } == 0).then_some("--user=root")
}

/// The test process's one server: a throwaway [`MariaDb`], or the one `ONEBOX_TEST_MYSQL_URL`
/// names. See [`shared`].
pub struct Shared {
    client: PathBuf,
    /// How databases are created.
    route: Route,
    /// The server URL (no database).
    url: ServerUrl,
    /// The throwaway server, if it is ours (a static: never dropped; see the module doc).
    own: Option<MariaDb>,
    /// Databases created on someone else's server, dropped at exit.
    created: Mutex<Vec<String>>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The shared server, started by the first test that asks (the others wait for it).
pub fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let shared = match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Shared::external(url.trim()),
            _ => Shared::own(),
        };
        clean_up_at_exit();
        shared
    })
}

impl Shared {
    fn own() -> Self {
        let server = MariaDb::start();
        Self {
            client: server.bins.client.clone(),
            route: Route::Socket(server.dir.path().join("sock")),
            url: ServerUrl::parse(&server.url()).expect("own URL"),
            own: Some(server),
            created: Mutex::new(Vec::new()),
        }
    }

    fn external(url: &str) -> Self {
        let parsed = ServerUrl::parse(url).unwrap_or_else(|e| panic!("{URL_VAR}: {e}"));
        let client = client().to_owned();
        let route = Route::Tcp(parsed.clone());
        if let Err(e) = client_sql(&client, &route, None, "SELECT 1") {
            panic!("{URL_VAR}={}: cannot connect: {e}", mask(url));
        }
        Self {
            client,
            route,
            url: parsed,
            own: None,
            created: Mutex::new(Vec::new()),
        }
    }

    /// Whether this is the server `ONEBOX_TEST_MYSQL_URL` names (not a throwaway).
    pub fn is_external(&self) -> bool {
        self.own.is_none()
    }

    /// The server's URL, without a database.
    pub fn url(&self) -> String {
        self.url.base.clone()
    }

    /// Creates a fresh database for one test (`t_<pid>_<n>`, utf8mb4) and returns its URL.
    pub fn create_database(&self) -> String {
        let name = create_database(&self.client, &self.route);
        if self.own.is_none() {
            self.created
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(name.clone());
        }
        self.url.with_database(&name)
    }
}

/// Registers [`clean_up`] to run at exit (once per process).
fn clean_up_at_exit() {
    static AT_EXIT: Once = Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain function; it runs at exit, after every test.
        let _ = unsafe { libc::atexit(clean_up) };
    });
}

/// At exit: kills the shared throwaway server, reaps it and removes its directory, or drops
/// the databases made on an external server; removes the template datadir.
extern "C" fn clean_up() {
    if let Some(template) = TEMPLATE.get() {
        let _ = std::fs::remove_dir_all(template.path());
    }
    let Some(shared) = SHARED.get() else {
        return;
    };
    if let Some(server) = &shared.own {
        if let Some(pid) = server
            .child
            .as_ref()
            .and_then(|c| libc::pid_t::try_from(c.id()).ok())
        {
            // SAFETY: our own child, never reaped elsewhere (the static's Child is never
            // waited on); after waitpid nothing writes into the directory any more.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        let _ = std::fs::remove_dir_all(server.dir.path());
        return;
    }
    let Ok(created) = shared.created.try_lock() else {
        return;
    };
    if !created.is_empty() {
        let drops: Vec<String> = created
            .iter()
            .map(|name| format!("DROP DATABASE IF EXISTS `{name}`"))
            .collect();
        let _ = client_sql(&shared.client, &shared.route, None, &drops.join("; "));
    }
}

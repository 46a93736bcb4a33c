//! The suite's own MariaDB, checked before anything is built
//! on it. The shared server hands each test a database of its own, a private server keeps its
//! data across a stop and a start, `ONEBOX_TEST_MYSQL_URL` is obeyed, and no server or
//! directory outlives the test process (checked on child processes of this very binary, which
//! run [`child_process`]).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::mariadb::{
    Binaries, MariaDb, NO_CLIENT, ServerUrl, URL_VAR, database_name, shared, sql, sweep_stale_dirs,
    try_sql,
};
use crate::harness::poll;

/// Tells [`child_process`] it was started by a test here, and how to end: `exit` or `hang`.
const CHILD_VAR: &str = "ONEBOX_TEST_DB_CHILD";

#[test]
fn shared_server_gives_each_test_its_own_database() {
    let server = shared();
    let a = server.create_database();
    let b = server.create_database();
    assert_ne!(a, b);
    assert!(a.starts_with(&format!("{}/", server.url())), "{a}");
    // The URL is what onebox gets: a client must get into that very database over TCP with it.
    assert_eq!(sql(&a, "SELECT DATABASE()").trim(), database_name(&a));
    sql(
        &a,
        "CREATE TABLE only_here (id INT PRIMARY KEY); INSERT INTO only_here VALUES (7)",
    );
    assert_eq!(sql(&a, "SELECT id FROM only_here").trim(), "7");
    assert_eq!(sql(&b, "SHOW TABLES").trim(), "");
    assert_eq!(sql(&a, "SELECT @@character_set_database").trim(), "utf8mb4");
    if !server.is_external() {
        // Never the machine's own MariaDB: a server of ours in a temporary directory.
        assert_ne!(ServerUrl::parse(&a).unwrap().port, 3306);
        let datadir = sql(&a, "SELECT @@datadir");
        let tmp = std::env::temp_dir();
        assert!(Path::new(datadir.trim()).starts_with(&tmp), "{datadir}");
    }
}

#[test]
fn private_server_keeps_its_data_across_a_stop() {
    let mut server = MariaDb::start();
    let url = server.create_database();
    let server_url = server.url();
    sql(
        &url,
        "CREATE TABLE kept (id INT PRIMARY KEY, word VARCHAR(20)); \
         INSERT INTO kept VALUES (1, 'still here')",
    );

    server.stop();
    assert!(!server.is_running());
    let refused = TcpStream::connect(server.addr()).expect_err("connected to a stopped server");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(try_sql(&url, "SELECT 1").is_err());

    server.start_again();
    assert!(server.is_running());
    assert_eq!(server.url(), server_url);
    assert_eq!(
        sql(&url, "SELECT word FROM kept WHERE id = 1").trim(),
        "still here"
    );
}

#[test]
fn env_url_names_the_server_to_use() {
    // The "someone else's server" is a private one, with a user whose password needs encoding.
    let server = MariaDb::start();
    let home = server.create_database();
    sql(
        &home,
        "CREATE TABLE marker (name VARCHAR(64)); \
         CREATE USER 'tester'@'127.0.0.1' IDENTIFIED BY 'p@ss:w/rd'; \
         GRANT ALL PRIVILEGES ON *.* TO 'tester'@'127.0.0.1'",
    );
    let env_url = format!(
        "mysql://tester:p%40ss%3Aw%2Frd@127.0.0.1:{}/{}",
        server.port(),
        database_name(&home)
    );
    let output = child("exit", Some(&env_url))
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "child failed:\n{stderr}"
    );
    // The child made its database on this server (and said so in the marker table)...
    let made = sql(&home, "SELECT name FROM marker");
    let made = made.trim();
    assert!(made.starts_with("t_"), "marker: {made:?}\n{stderr}");
    // ...and dropped it when it exited.
    let left = sql(
        &home,
        &format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{made}'"),
    );
    assert_eq!(left.trim(), "0");
}

#[test]
fn shared_server_goes_with_the_test_process() {
    // A normal exit: the exit handler kills the server and removes its directories.
    let done = child("exit", None).spawn().expect("run the child");
    let owner = done.id();
    let output = done.wait_with_output().expect("run the child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "child failed:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("child: "))
        .unwrap_or_else(|| panic!("no report from the child:\n{stderr}"));
    let (dir, pid) = child_report(line);
    assert!(!alive(pid), "mariadbd {pid} outlived its test process");
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert_eq!(dirs_of(owner), Vec::<PathBuf>::new());

    // Killed: the server dies with the process; the directories are swept by the next start.
    let mut hung = child("hang", None)
        .stdout(Stdio::null())
        .spawn()
        .expect("run the child");
    let owner = hung.id();
    let mut lines = BufReader::new(hung.stderr.take().expect("stderr")).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.starts_with("child: ")))
        .expect("no report from the child");
    let (dir, pid) = child_report(&line);
    assert!(alive(pid), "mariadbd {pid} is not running");
    hung.kill().expect("kill the child");
    hung.wait().expect("reap the child");
    assert!(
        poll(|| (!alive(pid)).then_some(())).is_some(),
        "mariadbd {pid} outlived its test process"
    );
    // Its own directory and the template datadir's.
    let left = dirs_of(owner);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&dir), "{left:?} lacks {}", dir.display());
    sweep_stale_dirs();
    assert_eq!(dirs_of(owner), Vec::<PathBuf>::new());
}

#[test]
fn without_mariadb_the_suite_says_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = [dir.path().to_owned()];
    assert_eq!(
        Binaries::find_in(&dirs).unwrap_err(),
        "no MariaDB for the tests: install mariadb-server (apt-get install mariadb-server) \
         or set ONEBOX_TEST_MYSQL_URL=mysql://user:pass@host:port/db"
    );
    let program = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    let server = program("mysqld");
    let install_db = program("mariadb-install-db");
    assert_eq!(Binaries::find_in(&dirs).unwrap_err(), NO_CLIENT);
    let client = program("mysql");
    let found = Binaries::find_in(&dirs).unwrap();
    assert_eq!(
        (found.server, found.install_db, found.client),
        (server, install_db, client)
    );
    // A file that is not executable is not a program.
    std::fs::write(dir.path().join("mariadbd"), "").unwrap();
    assert_eq!(
        Binaries::find_in(&dirs).unwrap().server,
        dir.path().join("mysqld")
    );
}

#[test]
fn server_urls_are_read_as_sqlx_reads_them() {
    let url = ServerUrl::parse("mysql://ob:p%40ss%3Aw%2Frd@db.example:3307/app?ssl-mode=disabled")
        .unwrap();
    assert_eq!(url.user, "ob");
    assert_eq!(url.password.as_deref(), Some("p@ss:w/rd"));
    assert_eq!((url.host.as_str(), url.port), ("db.example", 3307));
    assert_eq!(url.database, "app");
    assert_eq!(
        url.with_database("t_1_2"),
        "mysql://ob:p%40ss%3Aw%2Frd@db.example:3307/t_1_2?ssl-mode=disabled"
    );
    let url = ServerUrl::parse("mariadb://[::1]").unwrap();
    assert_eq!((url.user.as_str(), url.password), ("root", None));
    assert_eq!((url.host.as_str(), url.port), ("::1", 3306));
    assert_eq!(url.database, "");
    let url = ServerUrl::parse("mysql://app@localhost/x").unwrap();
    assert_eq!((url.user.as_str(), url.password), ("app", None));
    for bad in [
        "postgres://u@h/x",
        "127.0.0.1:3306",
        "mysql://u@h:port/x",
        "mysql:///x",
        "mysql://u:%zz@h/x",
    ] {
        assert!(ServerUrl::parse(bad).is_err(), "{bad} accepted");
    }
}

/// Not a test of its own: the body of the child processes the tests above start, which does
/// nothing unless `ONEBOX_TEST_DB_CHILD` is set. It takes a database from [`shared`], reports
/// it on stderr (`child: database=… datadir=… pid=…`), records it in the `marker` table when
/// the server is someone else's, and exits or (`hang`) waits to be killed.
#[test]
#[ignore = "run by other tests in a child process"]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_VAR) else {
        return;
    };
    let server = shared();
    let url = server.create_database();
    let name = database_name(&url);
    sql(&url, "CREATE TABLE made_by_child (id INT)");
    if server.is_external() {
        let home = std::env::var(URL_VAR).unwrap();
        sql(&home, &format!("INSERT INTO marker VALUES ('{name}')"));
    }
    let datadir = sql(&url, "SELECT @@datadir");
    let pid = sql(&url, "SELECT @@pid_file");
    let pid = std::fs::read_to_string(pid.trim()).unwrap_or_default();
    eprintln!(
        "child: database={name} datadir={} pid={}",
        datadir.trim(),
        pid.trim()
    );
    if mode == "hang" {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// This test binary running [`child_process`] alone, with `mode`, and with `env_url` as
/// `ONEBOX_TEST_MYSQL_URL` (or without the variable).
fn child(mode: &str, env_url: Option<&str>) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([
            "--exact",
            "db::harness::child_process",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads=1"])
        .env(CHILD_VAR, mode)
        .env_remove(URL_VAR)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = env_url {
        command.env(URL_VAR, url);
    }
    command
}

/// The server directory (the datadir's parent) and server pid from a child's report.
fn child_report(line: &str) -> (PathBuf, i32) {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    let datadir = Path::new(field("datadir="));
    let dir = datadir.parent().expect("datadir's parent").to_owned();
    let pid = field("pid=")
        .parse()
        .unwrap_or_else(|_| panic!("pid in {line:?}"));
    (dir, pid)
}

/// The throwaway servers' directories whose `owner` file names process `pid`.
fn dirs_of(pid: u32) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            std::fs::read_to_string(path.join("owner")).is_ok_and(|o| o.trim() == pid.to_string())
        })
        .collect();
    dirs.sort();
    dirs
}

/// Whether process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
    })
}

//! A small Chrome DevTools Protocol client, for what `--dump-dom` cannot show: computed styles,
//! layout at a phone's width, a page reached by signing in.
//!
//! Chromium runs with `--remote-debugging-pipe`: it reads commands from its descriptor 3 and
//! writes answers and events to its descriptor 4, each message one JSON document ended by a NUL
//! byte. A pipe needs no port, so it reaches a browser inside another network namespace
//! (`ip netns exec` passes descriptors through). One tab, attached with a flat session; each
//! call waits for its answer, keeping the events that arrive meanwhile for [`Browser::wait_event`].

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one command or one page load may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running Chromium and one tab in it; killed (its whole process group) on drop.
pub struct Browser {
    child: Child,
    commands: File,
    messages: Receiver<Value>,
    next_id: u64,
    /// Events received while waiting for an answer.
    events: Vec<Value>,
    /// The tab's session.
    session: String,
    /// Chromium's stderr, for failure messages.
    stderr: std::path::PathBuf,
}

/// A pipe whose two ends are at descriptors 10 or above, close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) fills the two-element array we pass.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    let high = |fd: i32| {
        // SAFETY: fcntl(2) duplicating a descriptor we own; the original is closed after.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
        assert!(copy >= 10, "fcntl: {}", std::io::Error::last_os_error());
        // SAFETY: both are descriptors we own, each wrapped once.
        unsafe {
            drop(OwnedFd::from_raw_fd(fd));
            OwnedFd::from_raw_fd(copy)
        }
    };
    (high(fds[0]), high(fds[1]))
}

impl Browser {
    /// Starts `command` (Chromium with its flags, possibly behind `ip netns exec` and `env`)
    /// with `--remote-debugging-pipe`, stderr to `dir/stderr`, and opens a tab.
    pub fn start(mut command: Command, dir: &Path) -> Self {
        let (their_commands, our_commands) = pipe();
        let (our_messages, their_messages) = pipe();
        let stderr = dir.join("stderr");
        let (theirs_in, theirs_out) = (their_commands.as_raw_fd(), their_messages.as_raw_fd());
        command
            .arg("--remote-debugging-pipe")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("Chromium's stderr file"))
            .process_group(0);
        // SAFETY: only dup2(2), async-signal-safe, between fork and exec. The sources are at
        // 10 or above, so neither is overwritten before it is copied.
        unsafe {
            command.pre_exec(move || {
                if libc::dup2(theirs_in, 3) < 0 || libc::dup2(theirs_out, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("start chromium (apt-get install chromium)");
        drop((their_commands, their_messages));

        let (sender, messages) = channel();
        let mut reader = BufReader::new(File::from(our_messages));
        std::thread::spawn(move || {
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        message.pop_if(|b| *b == 0);
                        let Ok(value) = serde_json::from_slice::<Value>(&message) else {
                            continue;
                        };
                        if sender.send(value).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut browser = Self {
            child,
            commands: File::from(our_commands),
            messages,
            next_id: 0,
            events: Vec::new(),
            session: String::new(),
            stderr,
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Chromium's stderr so far, without the lines about the D-Bus it cannot find.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.contains("dbus") && !l.contains("DBus"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: writing to Chromium: {e}\n{}", self.stderr()));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let message = self.receive(deadline, method);
            if message["id"] == json!(id) {
                return match message.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(message["result"].clone()),
                };
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    fn receive(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "Chromium: no {waiting_for} within {PATIENCE:?}\n{}",
                    self.stderr()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "Chromium went away waiting for {waiting_for}\n{}",
                    self.stderr()
                )
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(None, method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}\n{}", self.stderr()))
    }

    /// Sends `method` to the tab; panics with Chromium's error if it fails.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}\n{}", self.stderr()))
    }

    /// Waits for the tab's event `method` (one that came already counts).
    pub fn wait_event(&mut self, method: &str) -> Value {
        let session = self.session.clone();
        let wanted = |m: &Value| m["method"] == method && m["sessionId"] == session.as_str();
        if let Some(at) = self.events.iter().position(wanted) {
            return self.events.remove(at);
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let message = self.receive(deadline, method);
            if wanted(&message) {
                return message;
            }
        }
    }

    /// The viewport: `width` × `height` CSS pixels, as a phone (`mobile`) or a desktop.
    pub fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// `prefers-color-scheme`: `light` or `dark`.
    pub fn color_scheme(&mut self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// Loads `url` and waits for its load event; panics if the navigation fails.
    pub fn go(&mut self, url: &str) {
        self.events.retain(|m| m["method"] != "Page.loadEventFired");
        let answer = self.call("Page.navigate", json!({"url": url}));
        if let Some(error) = answer.get("errorText") {
            panic!("loading {url}: {error}\n{}", self.stderr());
        }
        self.wait_event("Page.loadEventFired");
    }

    /// Runs `script` in the page as a form submission or a click would, and waits for the
    /// page it leads to to load.
    pub fn go_by(&mut self, script: &str) {
        self.events.retain(|m| m["method"] != "Page.loadEventFired");
        self.eval(script);
        self.wait_event("Page.loadEventFired");
    }

    /// The value of the JavaScript expression `script` in the page (awaited if a promise);
    /// panics with the exception if it throws.
    pub fn eval(&mut self, script: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": script, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("the page's script threw: {exception:#}\n{script}");
        }
        answer["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group we created (its leader is our child).
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }
}

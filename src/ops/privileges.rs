//! Privileges: onebox binds as root (or with `CAP_NET_BIND_SERVICE`, or with sockets passed
//! by systemd), and serves as the account named by the top-level keys `user` and `group`.
//!
//! [`plan`] decides once, from the keys and the account onebox was started as:
//!
//! - started as root, `user` empty: refused — a server that reads files and speaks to the
//!   network does not keep root by accident; `user = "root"` keeps it deliberately (tests,
//!   `make run` on a development box);
//! - started as root, `user` (and `group`, else the user's primary group) named: the
//!   snapshots are built with that account's effective IDs (so that what it cannot read fails
//!   at start, not at the next reload, and what it writes in `state_dir` belongs to it), root
//!   comes back for binding, then the IDs are switched for good ([`Plan::drop_root`]), checked
//!   by trying to regain root;
//! - started as someone else: `user` and `group` may only name that account (or be empty).

use std::ffi::{CStr, CString};
use std::io;

/// Why the account to serve as cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// Started as root with `user` empty.
    #[error(
        "key user: onebox was started as root; set user to the account to serve as (e.g. \
         \"onebox\"), or user = \"root\" to serve as root deliberately"
    )]
    RootRefused,
    /// No such user.
    #[error("key user: no user {0:?} on this system")]
    NoUser(String),
    /// No such group.
    #[error("key group: no group {0:?} on this system")]
    NoGroup(String),
    /// Not root, and asked to become someone else.
    #[error(
        "key {key}: onebox runs as {current:?}, not as root, so it cannot switch to {wanted:?}; \
         leave {key} empty or start onebox as root"
    )]
    CannotSwitch {
        /// `user` or `group`.
        key: &'static str,
        /// Who onebox runs as.
        current: String,
        /// Who the key names.
        wanted: String,
    },
    /// A system call refused the switch.
    #[error("cannot switch to user {user} (uid {uid}) and group {group} (gid {gid}): {what}")]
    Switch {
        /// The user.
        user: String,
        /// Its uid.
        uid: u32,
        /// The group.
        group: String,
        /// Its gid.
        gid: u32,
        /// Which step failed.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// An account to serve as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user's name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// The group's name.
    pub group: String,
    /// Its gid.
    pub gid: u32,
}

/// What to do with the process's privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not root: serve as the account onebox was started as.
    Keep,
    /// Root, deliberately (`user = "root"`).
    Root,
    /// Root now; serve as this account.
    Switch(Account),
}

/// Decides from `user` and `group` (see the module doc). Looks the names up; changes nothing.
pub fn plan(user: &str, group: &str) -> Result<Plan, PrivilegeError> {
    // SAFETY: geteuid and getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid != 0 {
        let current = user_name(euid).unwrap_or_else(|| euid.to_string());
        if !user.is_empty() && user != current {
            return Err(PrivilegeError::CannotSwitch {
                key: "user",
                current,
                wanted: user.to_owned(),
            });
        }
        let current_group = group_name(egid).unwrap_or_else(|| egid.to_string());
        if !group.is_empty() && group != current_group {
            return Err(PrivilegeError::CannotSwitch {
                key: "group",
                current: current_group,
                wanted: group.to_owned(),
            });
        }
        return Ok(Plan::Keep);
    }
    match user {
        "" => return Err(PrivilegeError::RootRefused),
        "root" if group.is_empty() || group == "root" => return Ok(Plan::Root),
        _ => {}
    }
    let (uid, primary) = user_ids(user).ok_or_else(|| PrivilegeError::NoUser(user.to_owned()))?;
    let (group, gid) = if group.is_empty() {
        (
            group_name(primary).unwrap_or_else(|| primary.to_string()),
            primary,
        )
    } else {
        let gid = group_id(group).ok_or_else(|| PrivilegeError::NoGroup(group.to_owned()))?;
        (group.to_owned(), gid)
    };
    Ok(Plan::Switch(Account {
        user: user.to_owned(),
        uid,
        group,
        gid,
    }))
}

impl Plan {
    /// Takes the account's effective IDs, keeping root as the saved ID (to bind afterwards):
    /// what is built now is read and written as the account will.
    pub fn assume(&self) -> Result<(), PrivilegeError> {
        let Self::Switch(account) = self else {
            return Ok(());
        };
        // SAFETY: setgroups reads one gid from the pointer given; setegid/seteuid take plain
        // ids. glibc applies each to every thread of the process.
        account.check("setgroups", unsafe { libc::setgroups(1, &account.gid) })?;
        account.check("setegid", unsafe { libc::setegid(account.gid) })?;
        account.check("seteuid", unsafe { libc::seteuid(account.uid) })
    }

    /// Takes root back as the effective ID (after [`Plan::assume`]), to bind.
    pub fn resume_root(&self) -> Result<(), PrivilegeError> {
        let Self::Switch(account) = self else {
            return Ok(());
        };
        // SAFETY: plain ids; root is the saved set-user-ID, so this is allowed.
        account.check("seteuid(0)", unsafe { libc::seteuid(0) })?;
        account.check("setegid(0)", unsafe { libc::setegid(0) })
    }

    /// Switches to the account for good: real, effective and saved IDs, supplementary groups
    /// reduced to the account's group. Then checks that root cannot be regained.
    pub fn drop_root(&self) -> Result<(), PrivilegeError> {
        let Self::Switch(account) = self else {
            return Ok(());
        };
        // SAFETY: as in `assume`; with root effective, setgid/setuid set all three IDs.
        account.check("setgroups", unsafe { libc::setgroups(1, &account.gid) })?;
        account.check("setgid", unsafe { libc::setgid(account.gid) })?;
        account.check("setuid", unsafe { libc::setuid(account.uid) })?;
        // SAFETY: as above; this must fail now.
        if unsafe { libc::setuid(0) } == 0 {
            return Err(account.error(
                "setuid(0) succeeded after the switch",
                io::Error::other("root could be regained"),
            ));
        }
        Ok(())
    }

    /// Who serves, for the log.
    pub fn describe(&self) -> String {
        match self {
            Self::Keep => {
                // SAFETY: no preconditions.
                let euid = unsafe { libc::geteuid() };
                user_name(euid).unwrap_or_else(|| euid.to_string())
            }
            Self::Root => "root".to_owned(),
            Self::Switch(account) => format!("{}:{}", account.user, account.group),
        }
    }
}

impl Account {
    fn check(&self, what: &'static str, rc: libc::c_int) -> Result<(), PrivilegeError> {
        if rc == 0 {
            Ok(())
        } else {
            Err(self.error(what, io::Error::last_os_error()))
        }
    }

    fn error(&self, what: &'static str, source: io::Error) -> PrivilegeError {
        PrivilegeError::Switch {
            user: self.user.clone(),
            uid: self.uid,
            group: self.group.clone(),
            gid: self.gid,
            what,
            source,
        }
    }
}

/// The uid and primary gid of user `name`.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed passwd is a valid out-parameter.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: the name is NUL-terminated, the buffer is
    // as long as said, and `entry`/`found` are writable.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some((entry.pw_uid, entry.pw_gid))
}

/// The name of user `uid`.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as in `user_ids`.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: as in `user_ids`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    Some(
        unsafe { CStr::from_ptr(entry.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The gid of group `name`.
fn group_id(name: &str) -> Option<u32> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: a zeroed group is a valid out-parameter.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: as in `user_ids`.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(entry.gr_gid)
}

/// The name of group `gid`.
fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as in `group_id`.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let mut found = std::ptr::null_mut();
    // SAFETY: as in `user_ids`.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`.
    Some(
        unsafe { CStr::from_ptr(entry.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up() {
        assert_eq!(user_ids("root"), Some((0, 0)));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_ids("no-such-user-onebox"), None);
    }

    #[test]
    fn the_plan_follows_the_account_started_as() {
        // SAFETY: no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            assert!(matches!(plan("", ""), Err(PrivilegeError::RootRefused)));
            assert_eq!(plan("root", "").expect("root"), Plan::Root);
            assert!(matches!(
                plan("no-such-user-onebox", ""),
                Err(PrivilegeError::NoUser(_))
            ));
            let nobody = plan("nobody", "").expect("nobody exists on Debian");
            assert!(matches!(nobody, Plan::Switch(ref a) if a.user == "nobody"));
        } else {
            assert_eq!(plan("", "").expect("keep"), Plan::Keep);
            assert!(matches!(
                plan("root", ""),
                Err(PrivilegeError::CannotSwitch { key: "user", .. })
            ));
        }
    }
}

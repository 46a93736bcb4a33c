//! What `onebox restore` refuses, before it changes anything: a changed byte (the member
//! named), a truncated archive, a wrong or missing passphrase, a target holding data.

use std::os::unix::fs::PermissionsExt;

use super::{BoxDirs, PASSWORD, backup, files, ok, refused};
use crate::harness::repo;

/// A box with a user, the shipped zone and a small site; backed up.
fn source(extra: &str) -> (BoxDirs, std::path::PathBuf) {
    let source = BoxDirs::new("", extra);
    std::fs::create_dir_all(source.path("zones")).expect("zones");
    std::fs::copy(
        repo().join("zones/foobar.com.zone"),
        source.path("zones/foobar.com.zone"),
    )
    .expect("zone");
    std::fs::create_dir_all(source.path("site/img")).expect("site");
    std::fs::write(
        source.path("site/index.html"),
        "<h1>the unique marker of index.html</h1>\n",
    )
    .expect("page");
    std::fs::write(source.path("site/img/dot.bin"), [0u8, 1, 2, 3]).expect("file");
    ok(&source.cli(&["migrate", "up"], ""), "migrate up");
    ok(
        &source.cli(
            &["user", "add", "--email", "ada@foobar.com", "--admin"],
            &format!("{PASSWORD}\n"),
        ),
        "user add",
    );
    let archive = backup(&source.config, &source.path("backups"));
    (source, archive)
}

#[test]
fn a_damaged_archive_is_refused_with_its_member_named() {
    let (source, archive) = source("");
    let out = source.cli(
        &[
            "backup",
            "--to",
            &source.path("backups").display().to_string(),
        ],
        "",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not encrypted"), "{said}");
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the archive is private");

    let target = BoxDirs::new("", "");
    let before = files(target.dir.path());

    // One changed byte inside a member's content.
    let mut bytes = std::fs::read(&archive).expect("read archive");
    let at = bytes
        .windows(13)
        .position(|w| w == b"unique marker")
        .expect("the page's text in the archive");
    bytes[at] ^= 0x20;
    let changed = target.path("changed.tar");
    std::fs::write(&changed, &bytes).expect("write");
    let said = refused(
        &target.cli(&["restore", &changed.display().to_string()], ""),
        "a changed byte",
    );
    assert!(
        said.contains("member site/index.html: checksum mismatch"),
        "{said}"
    );
    std::fs::remove_file(&changed).expect("rm");
    assert_eq!(files(target.dir.path()), before, "the target is untouched");

    // Truncated: at several points, each refused.
    let whole = std::fs::read(&archive).expect("read archive");
    for cut in [whole.len() / 3, whole.len() / 2, whole.len() - 1600] {
        let truncated = target.path("truncated.tar");
        std::fs::write(&truncated, &whole[..cut]).expect("write");
        let said = refused(
            &target.cli(&["restore", &truncated.display().to_string()], ""),
            "a truncated archive",
        );
        assert!(said.contains("truncated archive"), "cut at {cut}: {said}");
        std::fs::remove_file(&truncated).expect("rm");
        assert_eq!(files(target.dir.path()), before, "the target is untouched");
    }

    // The archive whole: restored.
    ok(
        &target.cli(&["restore", &archive.display().to_string()], ""),
        "restore",
    );
    assert_eq!(
        std::fs::read(target.path("site/img/dot.bin")).expect("restored file"),
        [0u8, 1, 2, 3]
    );
}

#[test]
fn a_target_holding_data_is_refused_unless_forced() {
    let (_source, archive) = source("");
    let target = BoxDirs::new("", "");
    ok(&target.cli(&["migrate", "up"], ""), "migrate up");
    ok(
        &target.cli(
            &["user", "add", "--email", "bob@foobar.com"],
            &format!("{PASSWORD}\n"),
        ),
        "user add",
    );
    let said = refused(
        &target.cli(&["restore", &archive.display().to_string()], ""),
        "a target with data",
    );
    assert!(
        said.contains("not empty") && said.contains("users: 1"),
        "{said}"
    );
    assert!(said.contains("--force"), "{said}");
    let users = ok(&target.cli(&["user", "list"], ""), "user list");
    assert!(users.starts_with("bob@foobar.com"), "{users}");

    ok(
        &target.cli(&["restore", "--force", &archive.display().to_string()], ""),
        "restore --force",
    );
    let users = ok(&target.cli(&["user", "list"], ""), "user list");
    assert!(
        users.starts_with("ada@foobar.com") && !users.contains("bob"),
        "{users}"
    );
}

#[test]
fn encrypted_archives_need_the_right_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, "open sesame\n").expect("write");
    std::fs::write(&wrong, "open says me\n").expect("write");
    let (_source, archive) = source(&format!(
        "[backup]\npassphrase_file = '{}'\n",
        right.display()
    ));
    assert!(archive.display().to_string().ends_with(".tar.age"));
    let bytes = std::fs::read(&archive).expect("read");
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    // The passphrase's key costs the same wherever the archive was made (N = 2^18), so that a
    // slower or busier machine restores it.
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let stanza = header.lines().nth(1).expect("the scrypt stanza");
    assert!(
        stanza.starts_with("-> scrypt ") && stanza.ends_with(" 18"),
        "{stanza}"
    );
    assert!(
        !bytes.windows(13).any(|w| w == b"unique marker"),
        "nothing readable in the archive"
    );

    let none = BoxDirs::new("", "");
    let before = files(none.dir.path());
    let said = refused(
        &none.cli(&["restore", &archive.display().to_string()], ""),
        "no passphrase",
    );
    assert!(said.contains("encrypted"), "{said}");
    assert_eq!(files(none.dir.path()), before);

    let target = BoxDirs::new(
        "",
        &format!("[backup]\npassphrase_file = '{}'\n", wrong.display()),
    );
    let before = files(target.dir.path());
    let said = refused(
        &target.cli(&["restore", &archive.display().to_string()], ""),
        "a wrong passphrase",
    );
    assert!(said.contains("wrong passphrase"), "{said}");
    assert_eq!(files(target.dir.path()), before, "the target is untouched");

    let target = BoxDirs::new(
        "",
        &format!("[backup]\npassphrase_file = '{}'\n", right.display()),
    );
    ok(
        &target.cli(&["restore", &archive.display().to_string()], ""),
        "restore",
    );
    assert!(
        std::fs::read_to_string(target.path("site/index.html"))
            .expect("restored page")
            .contains("unique marker")
    );
}

//! The posts queries (`onebox::db::posts`) on each database, without a server: what a list
//! returns and in which order, how pages end, what publishing does to `published_at`, and that
//! a duplicate slug — even from writers racing — is [`PostError::SlugTaken`] and changes
//! nothing.

use onebox::db::Db;
use onebox::db::entity::user;
use onebox::db::posts::{self, Page, PostError, PostFields, Status};
use sea_orm::{ActiveModelTrait, ActiveValue};

use super::{Backend, both, connect};

both!(
    lists_are_pages_newest_first,
    publishing_sets_published_at_once,
    duplicate_slugs_are_typed_and_change_nothing,
    racing_writers_get_one_slug_each,
    missing_posts_are_not_found,
    busy_reads_leave_connections_for_writes_and_transactions,
);

/// A fresh, migrated database of `backend` (the directory holds the SQLite file).
async fn fresh(backend: Backend) -> (Db, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("posts.db").display()),
        Backend::MariaDb => crate::harness::mariadb::shared().create_database(),
    };
    (connect(&url).await, dir)
}

async fn author(db: &Db, name: &str) -> i64 {
    let now = posts::now();
    user::ActiveModel {
        id: ActiveValue::NotSet,
        email: ActiveValue::Set(format!("{name}@foobar.com")),
        display_name: ActiveValue::Set(name.to_owned()),
        password_hash: ActiveValue::Set("!".to_owned()),
        role: ActiveValue::Set(onebox::db::users::Role::Editor),
        api_token_hash: ActiveValue::Set(None),
        created_at: ActiveValue::Set(now),
        updated_at: ActiveValue::Set(now),
    }
    .insert(db.conn())
    .await
    .expect("insert user")
    .id
}

fn fields(slug: &str, status: Status) -> PostFields {
    PostFields {
        slug: slug.to_owned(),
        title: format!("Title of {slug}"),
        body_markdown: format!("Body of *{slug}*"),
        body_html: format!("<p>Body of <em>{slug}</em></p>"),
        excerpt: format!("Body of {slug}"),
        status,
    }
}

async fn lists_are_pages_newest_first(backend: Backend) {
    let (db, _dir) = fresh(backend).await;
    let ada = author(&db, "Ada").await;
    for n in 1..=25 {
        posts::insert(&db, fields(&format!("p{n:02}"), Status::Published), ada)
            .await
            .expect("insert");
        if n % 10 == 0 {
            posts::insert(&db, fields(&format!("draft{n}"), Status::Draft), ada)
                .await
                .expect("insert draft");
        }
    }
    let page = |number| Page {
        number,
        per_page: 10,
    };
    let slugs = |listing: &posts::Listing<posts::PublicSummary>| -> Vec<String> {
        listing.items.iter().map(|p| p.slug.clone()).collect()
    };
    // Same second for many: the newer row (higher id) first.
    let first = posts::list_published(&db, page(1)).await.expect("page 1");
    let expected: Vec<String> = (16..=25).rev().map(|n| format!("p{n:02}")).collect();
    assert_eq!(slugs(&first), expected);
    assert!(first.has_next);
    let item = &first.items[0];
    assert_eq!(item.author, "Ada");
    assert_eq!(item.title, "Title of p25");
    assert_eq!(item.excerpt, format!("Body of {}", item.slug));
    assert!(item.published_at.is_some());
    let last = posts::list_published(&db, page(3)).await.expect("page 3");
    assert_eq!(slugs(&last), ["p05", "p04", "p03", "p02", "p01"]);
    assert!(!last.has_next);
    let past = posts::list_published(&db, page(4)).await.expect("page 4");
    assert!(past.items.is_empty() && !past.has_next);
    // Exactly full pages: no further page announced.
    let whole = posts::list_published(
        &db,
        Page {
            number: 1,
            per_page: 25,
        },
    )
    .await
    .expect("one page");
    assert_eq!(whole.items.len(), 25);
    assert!(!whole.has_next);
    // The editor's list has the drafts too.
    let all = posts::list_all(
        &db,
        Page {
            number: 1,
            per_page: 100,
        },
    )
    .await
    .expect("all");
    assert_eq!(all.items.len(), 27);
    assert_eq!(
        all.items
            .iter()
            .filter(|p| p.status == Status::Draft)
            .count(),
        2
    );
    let newest = all
        .items
        .iter()
        .find(|p| p.slug == "p25")
        .expect("p25 in the editor's list");
    assert_eq!(newest.author_id, ada);
    assert_eq!(newest.status, Status::Published);
    let absurd = posts::list_published(
        &db,
        Page {
            number: u64::MAX,
            per_page: 10,
        },
    )
    .await
    .expect("overflowing page");
    assert!(absurd.items.is_empty());
}

async fn publishing_sets_published_at_once(backend: Backend) {
    let (db, _dir) = fresh(backend).await;
    let ada = author(&db, "Ada").await;
    let id = posts::insert(&db, fields("hello", Status::Draft), ada)
        .await
        .expect("insert");
    let draft = posts::by_id(&db, id).await.expect("read").expect("exists");
    assert_eq!(draft.published_at, None);
    assert_eq!(draft.author, "Ada");
    assert_eq!(draft.body_html, "<p>Body of <em>hello</em></p>");
    assert_eq!(draft.created_at.and_utc().timestamp_subsec_nanos(), 0);
    assert!(
        posts::published_by_slug(&db, "hello")
            .await
            .expect("read")
            .is_none()
    );
    assert_eq!(
        posts::by_slug(&db, "hello").await.expect("read"),
        Some(draft.clone())
    );

    posts::update(&db, id, fields("hello", Status::Published))
        .await
        .expect("publish");
    let published = posts::published_by_slug(&db, "hello")
        .await
        .expect("read")
        .expect("published");
    let first = published.published_at.expect("published_at set");
    assert!(first >= draft.created_at);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut changed = fields("hello-again", Status::Draft);
    changed.title = "Renamed".to_owned();
    posts::update(&db, id, changed).await.expect("unpublish");
    let back = posts::by_id(&db, id).await.expect("read").expect("exists");
    assert_eq!(back.slug, "hello-again");
    assert_eq!(back.title, "Renamed");
    assert_eq!(back.status, Status::Draft);
    assert_eq!(
        back.published_at,
        Some(first),
        "unpublishing keeps the date"
    );
    assert!(back.updated_at > published.updated_at);
    posts::update(&db, id, fields("hello-again", Status::Published))
        .await
        .expect("republish");
    let again = posts::by_id(&db, id).await.expect("read").expect("exists");
    assert_eq!(again.published_at, Some(first), "first publication stays");
}

async fn duplicate_slugs_are_typed_and_change_nothing(backend: Backend) {
    let (db, _dir) = fresh(backend).await;
    let ada = author(&db, "Ada").await;
    posts::insert(&db, fields("taken", Status::Published), ada)
        .await
        .expect("insert");
    let other = posts::insert(&db, fields("other", Status::Draft), ada)
        .await
        .expect("insert");
    let twice = posts::insert(&db, fields("taken", Status::Draft), ada).await;
    assert!(matches!(twice, Err(PostError::SlugTaken)), "{twice:?}");

    let before = posts::by_id(&db, other).await.expect("read");
    let mut clash = fields("taken", Status::Published);
    clash.title = "Changed".to_owned();
    let result = posts::update(&db, other, clash).await;
    assert!(matches!(result, Err(PostError::SlugTaken)), "{result:?}");
    assert_eq!(posts::by_id(&db, other).await.expect("read"), before);
    let all = posts::list_all(
        &db,
        Page {
            number: 1,
            per_page: 10,
        },
    )
    .await
    .expect("list");
    assert_eq!(all.items.len(), 2);
}

async fn racing_writers_get_one_slug_each(backend: Backend) {
    let (db, _dir) = fresh(backend).await;
    let ada = author(&db, "Ada").await;
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(
                async move { posts::insert(&db, fields("race", Status::Draft), ada).await },
            )
        })
        .collect();
    let mut won = 0;
    for writer in writers {
        match writer.await.expect("task") {
            Ok(_) => won += 1,
            Err(PostError::SlugTaken) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
}

async fn missing_posts_are_not_found(backend: Backend) {
    let (db, _dir) = fresh(backend).await;
    let result = posts::update(&db, 999, fields("x", Status::Draft)).await;
    assert!(matches!(result, Err(PostError::NotFound)), "{result:?}");
    let result = posts::delete(&db, 999).await;
    assert!(matches!(result, Err(PostError::NotFound)), "{result:?}");
    assert!(posts::by_id(&db, 999).await.expect("read").is_none());
    let ada = author(&db, "Ada").await;
    let id = posts::insert(&db, fields("gone", Status::Published), ada)
        .await
        .expect("insert");
    posts::delete(&db, id).await.expect("delete");
    assert!(posts::by_slug(&db, "gone").await.expect("read").is_none());
    let result = posts::delete(&db, id).await;
    assert!(matches!(result, Err(PostError::NotFound)), "{result:?}");
}

/// Reads keep their connections between statements and hand them to each other in turn: with
/// a pool of two, sixteen tasks reading without pause still leave a connection to those who
/// take one from the pool themselves (a transaction, a statement on `Db::conn`), and to
/// writes; each gets its connection well within `database.acquire_timeout`, and afterwards no
/// connection stays lent out.
async fn busy_reads_leave_connections_for_writes_and_transactions(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("posts.db").display()),
        Backend::MariaDb => crate::harness::mariadb::shared().create_database(),
    };
    let mut config = onebox::config::Config::default();
    config.database.url = url;
    config.database.max_connections = 2;
    config.database.acquire_timeout = std::time::Duration::from_secs(10);
    let db = Db::connect(&config).await.expect("connect");
    db.migrate_up(None).await.expect("migrate");
    let ada = author(&db, "ada").await;
    posts::insert(&db, fields("first", Status::Published), ada)
        .await
        .expect("insert");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let db = db.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let page = Page {
                        number: 1,
                        per_page: 10,
                    };
                    posts::list_published(&db, page).await.expect("read");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let deadline = std::time::Duration::from_secs(5);
    for n in 0..5 {
        let started = std::time::Instant::now();
        let bob = author(&db, &format!("bob{n}")).await;
        posts::insert(&db, fields(&format!("p{n}"), Status::Draft), bob)
            .await
            .expect("write");
        let txn = db.begin().await.expect("begin");
        sea_orm::TransactionTrait::begin(&txn)
            .await
            .expect("nested")
            .commit()
            .await
            .expect("commit nested");
        txn.commit().await.expect("commit");
        assert!(
            started.elapsed() < deadline,
            "a write and a transaction took {:?} beside busy reads",
            started.elapsed()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.expect("reader");
    }
    assert!(reads > 0, "the readers read");
    // A connection handed back to sqlx's pool (by the transaction) gets there on a task of
    // its own, a moment later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while db.pool().in_use > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(db.pool().in_use, 0, "{:?}", db.pool());
}

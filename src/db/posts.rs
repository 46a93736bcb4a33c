//! The posts aggregate's queries: what the blog, the API and the editor read and write.
//!
//! Reads are shaped by what a page needs, because they sit on the hottest paths (`/blog`,
//! `/api/posts`):
//!
//! - a list selects only the columns a list shows (no bodies) and the author's name by a join,
//!   in one query that walks the `(status, published_at)` index in order and stops after the
//!   page; it fetches one row more than a page holds to learn whether another page follows,
//!   so no `COUNT(*)` is needed. The public lists ([`PublicSummary`]) select only what a
//!   reader sees: each column costs the driver its definition on every execution as well as
//!   its values;
//! - one post is one query by its unique slug (or id), joined to its author likewise.
//!
//! Every write is one statement, so a failed write leaves nothing half-written. Slugs are
//! unique in the schema: a write that would duplicate one fails with [`PostError::SlugTaken`],
//! recognised from the database's own unique violation (two writers may race past any check
//! made before).
//!
//! Times are UTC, whole seconds (MySQL's `DATETIME` keeps no fraction; SQLite would, so the
//! two would disagree). The data layer stores and fetches: rendering and validation are the
//! application's.

use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue, ColumnTrait, DbErr, EntityTrait, FromQueryResult, JoinType, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, RelationTrait, SqlErr,
};

use super::Db;
pub use super::entity::post::Status;
use super::entity::{post, user};

/// A timestamp as stored: UTC, no zone.
pub type Timestamp = sea_orm::prelude::DateTime;

/// A write that failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// Another post has this slug.
    #[error("another post already has this slug")]
    SlugTaken,
    /// The post does not exist (any more).
    #[error("no such post")]
    NotFound,
    /// The database failed.
    #[error("database")]
    Db(#[from] DbErr),
}

/// Which page of a list: 1-based `number`, `per_page` items each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The page, from 1.
    pub number: u64,
    /// Items per page (at least 1).
    pub per_page: u64,
}

impl Page {
    /// Rows skipped before this page; `None` if that overflows.
    fn offset(self) -> Option<u64> {
        self.number.checked_sub(1)?.checked_mul(self.per_page)
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The page's items, in order.
    pub items: Vec<T>,
    /// Whether a further page has items.
    pub has_next: bool,
}

/// A post as a list shows it: no bodies. Read from a row by position, in the order
/// [`list_query`] selects the columns (see [`PostSummary::from_query_result`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostSummary {
    /// Row id.
    pub id: i64,
    /// The post's address under `/blog/`.
    pub slug: String,
    /// The title.
    pub title: String,
    /// Draft or published.
    pub status: Status,
    /// The start of the body as plain text.
    pub excerpt: String,
    /// The author's user id.
    pub author_id: i64,
    /// The author's display name.
    pub author: String,
    /// When it was first published.
    pub published_at: Option<Timestamp>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl FromQueryResult for PostSummary {
    /// The row of [`list_query`], by position: the list's hot path reads 11 rows of 9 columns
    /// per page, and by name each value would cost a formatted name and a lookup in the row's
    /// column map. `pre` is not used: no query selects a summary under a prefix.
    fn from_query_result(row: &sea_orm::QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            id: row.try_get_by_index(0)?,
            slug: row.try_get_by_index(1)?,
            title: row.try_get_by_index(2)?,
            status: row.try_get_by_index(3)?,
            excerpt: row.try_get_by_index(4)?,
            author_id: row.try_get_by_index(5)?,
            published_at: row.try_get_by_index(6)?,
            updated_at: row.try_get_by_index(7)?,
            author: row.try_get_by_index(8)?,
        })
    }
}

/// A published post as the public lists show it (the blog, the home page, the API's list):
/// what a reader sees, no ids or status. Read from a row by position, in the order
/// [`list_query`] selects the columns for [`List::Published`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSummary {
    /// The post's address under `/blog/`.
    pub slug: String,
    /// The title.
    pub title: String,
    /// The start of the body as plain text.
    pub excerpt: String,
    /// The author's display name.
    pub author: String,
    /// When it was first published.
    pub published_at: Option<Timestamp>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl FromQueryResult for PublicSummary {
    /// The row of [`list_query`] for [`List::Published`], by position, as
    /// [`PostSummary::from_query_result`] reads the editor's.
    fn from_query_result(row: &sea_orm::QueryResult, _pre: &str) -> Result<Self, DbErr> {
        Ok(Self {
            slug: row.try_get_by_index(0)?,
            title: row.try_get_by_index(1)?,
            excerpt: row.try_get_by_index(2)?,
            published_at: row.try_get_by_index(3)?,
            updated_at: row.try_get_by_index(4)?,
            author: row.try_get_by_index(5)?,
        })
    }
}

/// A whole post, with its author's name.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct PostDetail {
    /// Row id.
    pub id: i64,
    /// The post's address under `/blog/`.
    pub slug: String,
    /// The title.
    pub title: String,
    /// The body as written (Markdown).
    pub body_markdown: String,
    /// The body rendered and sanitised when it was written.
    pub body_html: String,
    /// Draft or published.
    pub status: Status,
    /// The start of the body as plain text.
    pub excerpt: String,
    /// The author's user id.
    pub author_id: i64,
    /// The author's display name.
    pub author: String,
    /// When it was first published.
    pub published_at: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What a write stores (an insert, or every field of an update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostFields {
    /// The slug.
    pub slug: String,
    /// The title.
    pub title: String,
    /// The body as written.
    pub body_markdown: String,
    /// The body rendered and sanitised.
    pub body_html: String,
    /// The start of the body as plain text.
    pub excerpt: String,
    /// Draft or published.
    pub status: Status,
}

/// Now, as stored: UTC, whole seconds.
pub fn now() -> Timestamp {
    let now = chrono::Utc::now().naive_utc();
    chrono::Timelike::with_nanosecond(&now, 0).unwrap_or(now)
}

/// Published posts, newest first: page `page`.
pub async fn list_published(db: &Db, page: Page) -> Result<Listing<PublicSummary>, DbErr> {
    list(db, page, List::Published).await
}

/// Every post, drafts too, most recently changed first (the editor's list).
pub async fn list_all(db: &Db, page: Page) -> Result<Listing<PostSummary>, DbErr> {
    list(db, page, List::All).await
}

/// The two lists: what each selects, filters and orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    /// Published posts, newest first: [`PUBLIC_COLUMNS`], read as [`PublicSummary`].
    Published,
    /// Every post, most recently changed first: [`LIST_COLUMNS`], read as [`PostSummary`].
    All,
}

async fn list<T: FromQueryResult>(db: &Db, page: Page, list: List) -> Result<Listing<T>, DbErr> {
    let Some(statement) = list_statement(db.backend(), page, list) else {
        return Ok(Listing {
            items: Vec::new(),
            has_next: false,
        });
    };
    let mut items = T::find_by_statement(statement).all(&db.reads()).await?;
    let has_next = items.len() as u64 > page.per_page;
    items.truncate(usize::try_from(page.per_page).unwrap_or(usize::MAX));
    Ok(Listing { items, has_next })
}

/// The columns the public list selects, in the order [`PublicSummary`] reads them (and
/// `author`, the joined user's name, last).
const PUBLIC_COLUMNS: [post::Column; 5] = [
    post::Column::Slug,
    post::Column::Title,
    post::Column::Excerpt,
    post::Column::PublishedAt,
    post::Column::UpdatedAt,
];

/// The columns the editor's list selects, in the order [`PostSummary`] reads them (and
/// `author`, the joined user's name, last).
const LIST_COLUMNS: [post::Column; 8] = [
    post::Column::Id,
    post::Column::Slug,
    post::Column::Title,
    post::Column::Status,
    post::Column::Excerpt,
    post::Column::AuthorId,
    post::Column::PublishedAt,
    post::Column::UpdatedAt,
];

/// The query of one page of a list (and one row more); `None` past any possible row.
fn list_query(page: Page, list: List) -> Option<sea_orm::Select<post::Entity>> {
    let offset = page.offset()?;
    let query = post::Entity::find().select_only();
    let query = match list {
        List::Published => query.columns(PUBLIC_COLUMNS),
        List::All => query.columns(LIST_COLUMNS),
    };
    let query = query
        .column_as(user::Column::DisplayName, "author")
        // LEFT, not INNER (the same rows: the foreign key keeps every author): it makes
        // MySQL read `posts` first, down `idx_posts_status_published_at` in order and only as
        // far as the page, then each author by primary key. With INNER and few users it
        // starts from `users` and sorts every post of the author instead.
        .join(JoinType::LeftJoin, post::Relation::Author.def());
    let query = match list {
        List::Published => query
            .filter(post::Column::Status.eq(Status::Published))
            .order_by_desc(post::Column::PublishedAt),
        List::All => query.order_by_desc(post::Column::UpdatedAt),
    };
    Some(
        query
            .order_by_desc(post::Column::Id)
            .limit(page.per_page.saturating_add(1))
            .offset(offset),
    )
}

/// [`list_query`] as a statement for `backend`. Its text depends only on the engine and on
/// the list (the page is in its last two values, `LIMIT` and `OFFSET`), so it is built by
/// sea-query once per engine and list and reused: on the blog's hot path, building it cost as
/// much as decoding the page's rows.
fn list_statement(
    backend: sea_orm::DbBackend,
    page: Page,
    list: List,
) -> Option<sea_orm::Statement> {
    use std::sync::OnceLock;
    static BUILT: [OnceLock<Option<sea_orm::Statement>>; 4] = [const { OnceLock::new() }; 4];
    let offset = page.offset()?;
    let limit = page.per_page.saturating_add(1);
    let engine = match backend {
        sea_orm::DbBackend::MySql => 0,
        sea_orm::DbBackend::Sqlite => 1,
        // Not an engine onebox runs on: built each time.
        _ => return Some(list_query(page, list)?.build(backend)),
    };
    let kind = match list {
        List::Published => 0,
        List::All => 1,
    };
    let Some(slot) = BUILT.get(engine * 2 + kind) else {
        return Some(list_query(page, list)?.build(backend));
    };
    let template = slot.get_or_init(|| list_template(backend, list));
    let Some(template) = template else {
        // Not the shape expected (another sea-query): built each time, as before.
        return Some(list_query(page, list)?.build(backend));
    };
    let mut statement = template.clone();
    if let Some(tail) = statement.values.as_mut().and_then(|values| {
        let at = values.0.len().checked_sub(2)?;
        values.0.get_mut(at..)
    }) {
        tail[0] = sea_orm::Value::BigUnsigned(Some(limit));
        tail[1] = sea_orm::Value::BigUnsigned(Some(offset));
    }
    Some(statement)
}

/// [`list_query`] for a sample page, if its last two values are that page's `LIMIT` and
/// `OFFSET` (what [`list_statement`] replaces).
fn list_template(backend: sea_orm::DbBackend, list: List) -> Option<sea_orm::Statement> {
    let sample = Page {
        number: 3,
        per_page: 7,
    };
    let statement = list_query(sample, list)?.build(backend);
    let values = &statement.values.as_ref()?.0;
    let tail = values.get(values.len().checked_sub(2)?..)?;
    let expected = [
        sea_orm::Value::BigUnsigned(Some(8)),
        sea_orm::Value::BigUnsigned(Some(14)),
    ];
    (tail == expected).then_some(statement)
}

/// A published post as a feed shows it: the whole body.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct FeedEntry {
    /// The post's address under `/blog/`.
    pub slug: String,
    /// The title.
    pub title: String,
    /// The body rendered and sanitised.
    pub body_html: String,
    /// The start of the body as plain text.
    pub excerpt: String,
    /// The author's display name.
    pub author: String,
    /// When it was first published.
    pub published_at: Option<Timestamp>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// The `limit` most recently published posts, whole (the Atom feed).
pub async fn feed(db: &Db, limit: u64) -> Result<Vec<FeedEntry>, DbErr> {
    post::Entity::find()
        .select_only()
        .columns([
            post::Column::Slug,
            post::Column::Title,
            post::Column::BodyHtml,
            post::Column::Excerpt,
            post::Column::PublishedAt,
            post::Column::UpdatedAt,
        ])
        .column_as(user::Column::DisplayName, "author")
        .join(JoinType::LeftJoin, post::Relation::Author.def())
        .filter(post::Column::Status.eq(Status::Published))
        .order_by_desc(post::Column::PublishedAt)
        .order_by_desc(post::Column::Id)
        .limit(limit)
        .into_model::<FeedEntry>()
        .all(&db.reads())
        .await
}

/// A published post's address and when it last changed (the sitemap).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Located {
    /// The post's address under `/blog/`.
    pub slug: String,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Up to `limit` published posts, newest first: slug and last change only.
pub async fn locations(db: &Db, limit: u64) -> Result<Vec<Located>, DbErr> {
    post::Entity::find()
        .select_only()
        .columns([post::Column::Slug, post::Column::UpdatedAt])
        .filter(post::Column::Status.eq(Status::Published))
        .order_by_desc(post::Column::PublishedAt)
        .order_by_desc(post::Column::Id)
        .limit(limit)
        .into_model::<Located>()
        .all(&db.reads())
        .await
}

/// A post written before excerpts were stored: its id and Markdown.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct WithoutExcerpt {
    /// Row id.
    pub id: i64,
    /// The body as written.
    pub body_markdown: String,
}

/// Up to `limit` posts with a body but no excerpt, after row id `after`.
pub async fn without_excerpt(
    db: &Db,
    after: i64,
    limit: u64,
) -> Result<Vec<WithoutExcerpt>, DbErr> {
    post::Entity::find()
        .select_only()
        .columns([post::Column::Id, post::Column::BodyMarkdown])
        .filter(post::Column::Excerpt.eq(""))
        .filter(post::Column::BodyMarkdown.ne(""))
        .filter(post::Column::Id.gt(after))
        .order_by_asc(post::Column::Id)
        .limit(limit)
        .into_model::<WithoutExcerpt>()
        .all(&db.reads())
        .await
}

/// Stores the excerpt of post `id` (and nothing else: its `updated_at` stays).
pub async fn set_excerpt(db: &Db, id: i64, excerpt: &str) -> Result<(), DbErr> {
    post::Entity::update_many()
        .col_expr(post::Column::Excerpt, Expr::value(excerpt))
        .filter(post::Column::Id.eq(id))
        .exec(&db.writes())
        .await?;
    Ok(())
}

/// The whole post with its author, filtered by `condition`.
async fn detail(db: &Db, condition: sea_orm::Condition) -> Result<Option<PostDetail>, DbErr> {
    post::Entity::find()
        .select_only()
        .columns([
            post::Column::Id,
            post::Column::Slug,
            post::Column::Title,
            post::Column::BodyMarkdown,
            post::Column::BodyHtml,
            post::Column::Status,
            post::Column::Excerpt,
            post::Column::AuthorId,
            post::Column::PublishedAt,
            post::Column::CreatedAt,
            post::Column::UpdatedAt,
        ])
        .column_as(user::Column::DisplayName, "author")
        .join(JoinType::LeftJoin, post::Relation::Author.def())
        .filter(condition)
        .into_model::<PostDetail>()
        .one(&db.reads())
        .await
}

/// The published post at `slug`; `None` for an unknown slug or a draft.
pub async fn published_by_slug(db: &Db, slug: &str) -> Result<Option<PostDetail>, DbErr> {
    let condition = sea_orm::Condition::all()
        .add(post::Column::Slug.eq(slug))
        .add(post::Column::Status.eq(Status::Published));
    detail(db, condition).await
}

/// The post at `slug`, draft or published.
pub async fn by_slug(db: &Db, slug: &str) -> Result<Option<PostDetail>, DbErr> {
    detail(
        db,
        sea_orm::Condition::all().add(post::Column::Slug.eq(slug)),
    )
    .await
}

/// The post with row id `id`, draft or published.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<PostDetail>, DbErr> {
    detail(db, sea_orm::Condition::all().add(post::Column::Id.eq(id))).await
}

/// Stores a new post by `author_id`; returns its id. A published post gets `published_at`
/// now.
pub async fn insert(db: &Db, fields: PostFields, author_id: i64) -> Result<i64, PostError> {
    let now = now();
    let published = fields.status == Status::Published;
    let row = post::ActiveModel {
        id: ActiveValue::NotSet,
        slug: ActiveValue::Set(fields.slug),
        title: ActiveValue::Set(fields.title),
        body_markdown: ActiveValue::Set(fields.body_markdown),
        body_html: ActiveValue::Set(fields.body_html),
        status: ActiveValue::Set(fields.status),
        excerpt: ActiveValue::Set(fields.excerpt),
        author_id: ActiveValue::Set(author_id),
        published_at: ActiveValue::Set(published.then_some(now)),
        created_at: ActiveValue::Set(now),
        updated_at: ActiveValue::Set(now),
    };
    let result = post::Entity::insert(row)
        .exec(&db.writes())
        .await
        .map_err(conflict)?;
    Ok(result.last_insert_id)
}

/// Replaces every field of post `id` in one statement. Publishing sets `published_at` the
/// first time only; unpublishing keeps it.
pub async fn update(db: &Db, id: i64, fields: PostFields) -> Result<(), PostError> {
    let now = now();
    let published_at: Expr = match fields.status {
        Status::Published => {
            Func::coalesce([Expr::col(post::Column::PublishedAt), Expr::value(now)]).into()
        }
        Status::Draft => Expr::col(post::Column::PublishedAt),
    };
    let result = post::Entity::update_many()
        .col_expr(post::Column::Slug, Expr::value(fields.slug))
        .col_expr(post::Column::Title, Expr::value(fields.title))
        .col_expr(
            post::Column::BodyMarkdown,
            Expr::value(fields.body_markdown),
        )
        .col_expr(post::Column::BodyHtml, Expr::value(fields.body_html))
        .col_expr(post::Column::Status, Expr::value(fields.status.as_str()))
        .col_expr(post::Column::Excerpt, Expr::value(fields.excerpt))
        .col_expr(post::Column::PublishedAt, published_at)
        .col_expr(post::Column::UpdatedAt, Expr::value(now))
        .filter(post::Column::Id.eq(id))
        .exec(&db.writes())
        .await
        .map_err(conflict)?;
    // MySQL counts matched rows here (sqlx sets CLIENT_FOUND_ROWS), as SQLite does.
    if result.rows_affected == 0 {
        return Err(PostError::NotFound);
    }
    Ok(())
}

/// Deletes post `id`.
pub async fn delete(db: &Db, id: i64) -> Result<(), PostError> {
    let result = post::Entity::delete_by_id(id).exec(&db.writes()).await?;
    if result.rows_affected == 0 {
        return Err(PostError::NotFound);
    }
    Ok(())
}

/// A unique violation on `posts` can only be the slug (the id is the database's own).
fn conflict(error: DbErr) -> PostError {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => PostError::SlugTaken,
        _ => PostError::Db(error),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, QueryTrait};

    use super::*;

    /// The public list is the query the `(status, published_at)` index serves in order: no
    /// bodies, the author by a LEFT JOIN, newest first, one row past the page.
    #[test]
    fn the_public_list_is_one_cheap_query() {
        let page = Page {
            number: 3,
            per_page: 10,
        };
        let sql = list_query(page, List::Published)
            .expect("a page")
            .build(DbBackend::MySql)
            .to_string();
        assert!(!sql.contains("body"), "{sql}");
        assert!(
            sql.starts_with(
                "SELECT `posts`.`slug`, `posts`.`title`, `posts`.`excerpt`, \
                 `posts`.`published_at`, `posts`.`updated_at`, `users`.`display_name` AS `author` "
            ),
            "only what a reader sees: {sql}"
        );
        assert!(
            sql.contains("LEFT JOIN `users` ON `posts`.`author_id` = `users`.`id`"),
            "{sql}"
        );
        assert!(
            sql.ends_with(
                "WHERE `posts`.`status` = 'published' \
                 ORDER BY `posts`.`published_at` DESC, `posts`.`id` DESC LIMIT 11 OFFSET 20"
            ),
            "{sql}"
        );
        let past = Page {
            number: u64::MAX,
            per_page: 10,
        };
        assert!(list_query(past, List::All).is_none());
    }

    /// The statement reused across requests is the one sea-query builds for the page, text and
    /// values alike, for both engines and every kind of list; and it is reused (built once),
    /// not rebuilt because sea-query's shape changed.
    #[test]
    fn the_reused_list_statement_is_the_built_one() {
        for backend in [DbBackend::MySql, DbBackend::Sqlite] {
            for list in [List::Published, List::All] {
                assert!(
                    list_template(backend, list).is_some(),
                    "{backend:?} {list:?}: LIMIT and OFFSET are not the last values"
                );
                for (number, per_page) in [(1, 10), (2, 10), (7, 3), (1, 1), (1_000_000, 50)] {
                    let page = Page { number, per_page };
                    let built = list_query(page, list).expect("a page").build(backend);
                    let reused = list_statement(backend, page, list).expect("a page");
                    assert_eq!(reused.sql, built.sql, "{backend:?} {list:?} {page:?}");
                    assert_eq!(reused.values, built.values, "{backend:?} {list:?} {page:?}");
                }
                let past = Page {
                    number: u64::MAX,
                    per_page: 10,
                };
                assert!(list_statement(backend, past, list).is_none());
            }
        }
    }

    /// A summary is read by position: each field gets its own column's value (a column order
    /// that differs from [`PUBLIC_COLUMNS`] or [`LIST_COLUMNS`] would swap same-typed fields
    /// such as slug and title).
    #[tokio::test]
    async fn a_summary_reads_each_column_into_its_field() {
        let (_dir, db) = crate::db::migrated().await;
        let author = crate::db::users::insert(
            &db,
            crate::db::users::NewUser {
                email: "a@example.com".to_owned(),
                display_name: "Ann Author".to_owned(),
                password_hash: "x".to_owned(),
                role: crate::db::users::Role::Editor,
            },
        )
        .await
        .expect("user");
        let fields = |slug: &str, status| PostFields {
            slug: slug.to_owned(),
            title: format!("Title of {slug}"),
            body_markdown: "body".to_owned(),
            body_html: "<p>body</p>".to_owned(),
            excerpt: format!("Excerpt of {slug}"),
            status,
        };
        let first = insert(&db, fields("first", Status::Published), author.id)
            .await
            .expect("insert");
        let draft = insert(&db, fields("draft", Status::Draft), author.id)
            .await
            .expect("insert");
        let page = Page {
            number: 1,
            per_page: 10,
        };
        let public = list_published(&db, page).await.expect("list");
        assert!(!public.has_next);
        let [summary] = public.items.as_slice() else {
            panic!("one published post: {public:?}");
        };
        let stored = by_id(&db, first).await.expect("read").expect("there");
        assert_eq!(
            summary,
            &PublicSummary {
                slug: "first".to_owned(),
                title: "Title of first".to_owned(),
                excerpt: "Excerpt of first".to_owned(),
                author: "Ann Author".to_owned(),
                published_at: stored.published_at,
                updated_at: stored.updated_at,
            }
        );
        assert!(summary.published_at.is_some());
        let all = list_all(&db, page).await.expect("list");
        let firsts: Vec<_> = all.items.iter().filter(|p| p.id == first).collect();
        assert_eq!(
            firsts,
            [&PostSummary {
                id: first,
                slug: "first".to_owned(),
                title: "Title of first".to_owned(),
                status: Status::Published,
                excerpt: "Excerpt of first".to_owned(),
                author_id: author.id,
                author: "Ann Author".to_owned(),
                published_at: stored.published_at,
                updated_at: stored.updated_at,
            }]
        );
        let drafts: Vec<_> = all.items.iter().filter(|p| p.id == draft).collect();
        let [draft] = drafts.as_slice() else {
            panic!("the draft in the editor's list: {all:?}");
        };
        assert_eq!(
            (draft.slug.as_str(), draft.status),
            ("draft", Status::Draft)
        );
        assert_eq!(draft.published_at, None);
        let one = Page {
            number: 1,
            per_page: 1,
        };
        assert!(list_all(&db, one).await.expect("list").has_next);
        let second = Page {
            number: 2,
            per_page: 1,
        };
        assert_eq!(list_all(&db, second).await.expect("list").items.len(), 1);
    }
}

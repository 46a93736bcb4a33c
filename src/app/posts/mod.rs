//! Posts: the public blog pages, the JSON API and (with sign-in) the editor, over
//! [`crate::db::posts`].
//!
//! - `pages`: `GET /blog` (published posts, newest first, `?page=N`) and `GET /blog/{slug}`,
//!   rendered from `blog.html` and `post.html`;
//! - `api`: `/api/posts` as JSON (its routes and shapes are documented there);
//! - `editor`: `/editor`, the signed-in area to write, publish and delete posts;
//! - `input`: the rules a submitted post must meet, shared by the API and the editor.
//!
//! Who may change a post: its author, or an admin ([`may_change`]); every signed-in user may
//! create posts and sees every post, drafts too, in the editor's list.
//!
//! A page number is `?page=N` with N a whole number from 1 (anything else: 400); a page past
//! the last one is 404, except page 1, which is the (possibly empty) list.

pub(super) mod api;
pub(super) mod editor;
mod input;
pub(super) mod pages;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use serde::Deserialize;

use super::error::AppError;
use super::render::Viewer;
use crate::db::posts::{self, Page, PostDetail, PostError, Timestamp};

/// The highest page number served (deeper is 404 without asking the database).
const MAX_PAGE: u64 = 1_000_000;

/// The rule for changing (editing, publishing, deleting) a post, as a handler applies it:
/// 403 unless [`Viewer::may_change`] says yes.
fn may_change(viewer: &Viewer, post: &PostDetail) -> Result<(), AppError> {
    if viewer.may_change(post.author_id) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "only its author ({}) or an admin may change this post",
            post.author
        )))
    }
}

impl From<PostError> for AppError {
    fn from(error: PostError) -> Self {
        match error {
            PostError::SlugTaken => Self::Conflict {
                field: "slug",
                message: "another post already has this slug".to_owned(),
            },
            PostError::NotFound => Self::NotFound,
            PostError::Db(error) => error.into(),
        }
    }
}

/// Gives every post written before excerpts were stored its excerpt (once, when the database
/// is first up); returns how many.
pub(super) async fn backfill_excerpts(db: &crate::db::Db) -> Result<usize, sea_orm::DbErr> {
    let mut done = 0;
    let mut after = 0;
    loop {
        let batch = posts::without_excerpt(db, after, 100).await?;
        let Some(last) = batch.last() else {
            return Ok(done);
        };
        after = last.id;
        for post in &batch {
            let excerpt = super::markdown::excerpt(&post.body_markdown);
            if !excerpt.is_empty() {
                posts::set_excerpt(db, post.id, &excerpt).await?;
                done += 1;
            }
        }
    }
}

/// `?page=N`.
#[derive(Debug, Deserialize)]
pub(in crate::app) struct PageQuery {
    page: Option<String>,
}

/// The page a list request asks for, `per_page` items each.
fn page(query: Result<Query<PageQuery>, QueryRejection>, per_page: u64) -> Result<Page, AppError> {
    let bad = || AppError::BadRequest("page must be a whole number from 1".to_owned());
    let Query(query) = query.map_err(|_| bad())?;
    let number = match query.page {
        None => 1,
        Some(text) => {
            let digits =
                !text.is_empty() && text.len() <= 20 && text.bytes().all(|b| b.is_ascii_digit());
            if !digits {
                return Err(bad());
            }
            match text.parse::<u64>() {
                Ok(0) => return Err(bad()),
                Ok(n) if n <= MAX_PAGE => n,
                _ => return Err(AppError::NotFound),
            }
        }
    };
    Ok(Page { number, per_page })
}

/// A time as the API writes it: RFC 3339, UTC, whole seconds (`2026-11-26T09:30:00Z`).
/// Written digit by digit (every item of every list has two dates): chrono's formatter
/// interprets a format description each time, and `format!`'s padded numbers cost more still.
fn rfc3339(time: Timestamp) -> String {
    use chrono::{Datelike, Timelike};
    let Ok(year) = u32::try_from(time.year()) else {
        return chrono_rfc3339(time);
    };
    if year > 9999 {
        return chrono_rfc3339(time);
    }
    let mut text = String::with_capacity(20);
    digits(&mut text, year, 4);
    text.push('-');
    digits(&mut text, time.month(), 2);
    text.push('-');
    digits(&mut text, time.day(), 2);
    text.push('T');
    digits(&mut text, time.hour(), 2);
    text.push(':');
    digits(&mut text, time.minute(), 2);
    text.push(':');
    digits(&mut text, time.second(), 2);
    text.push('Z');
    text
}

fn chrono_rfc3339(time: Timestamp) -> String {
    time.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A date as a page shows it (`26 November 2026`).
fn human_date(time: Timestamp) -> String {
    use chrono::Datelike;
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let year = u32::try_from(time.year()).ok().filter(|year| *year <= 9999);
    let (Some(year), Some(month)) = (year, MONTHS.get(time.month0() as usize)) else {
        return time.format("%-d %B %Y").to_string();
    };
    let mut text = String::with_capacity(20);
    let day = time.day();
    digits(&mut text, day, if day < 10 { 1 } else { 2 });
    text.push(' ');
    text.push_str(month);
    text.push(' ');
    digits(&mut text, year, 4);
    text
}

/// The last `width` decimal digits of `n`, zero-padded.
fn digits(text: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = (n / 10u32.pow(place)) % 10;
        text.push(char::from(b'0' + digit as u8));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<u64, AppError> {
        let uri: axum::http::Uri = format!("/blog?{query}").parse().expect("uri");
        page(Query::try_from_uri(&uri), 10).map(|p| p.number)
    }

    #[test]
    fn page_numbers() {
        assert_eq!(parse("").ok(), Some(1));
        assert_eq!(parse("page=2").ok(), Some(2));
        assert_eq!(parse("page=007&x=y").ok(), Some(7));
        for bad in [
            "page=0", "page=-1", "page=abc", "page=1.5", "page=", "page=+2", "page=%FF",
        ] {
            assert!(matches!(parse(bad), Err(AppError::BadRequest(_))), "{bad}");
        }
        for deep in ["page=1000001", "page=99999999999999999999"] {
            assert!(matches!(parse(deep), Err(AppError::NotFound)), "{deep}");
        }
    }

    #[test]
    fn times() {
        let time = chrono::NaiveDate::from_ymd_opt(2026, 11, 6)
            .and_then(|d| d.and_hms_opt(9, 5, 7))
            .expect("valid");
        assert_eq!(rfc3339(time), "2026-11-06T09:05:07Z");
        assert_eq!(human_date(time), "6 November 2026");
        // As chrono writes them, across the months and the edges of the day.
        let mut day = chrono::NaiveDate::from_ymd_opt(1999, 12, 31).expect("valid");
        for _ in 0..400 {
            for (h, m, s) in [(0, 0, 0), (23, 59, 59), (12, 30, 9)] {
                let time = day.and_hms_opt(h, m, s).expect("valid");
                assert_eq!(
                    rfc3339(time),
                    time.and_utc()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                assert_eq!(human_date(time), time.format("%-d %B %Y").to_string());
            }
            day = day.succ_opt().expect("valid");
        }
        for year in [12345, 5, 0, -1] {
            let far = chrono::NaiveDate::from_ymd_opt(year, 1, 2)
                .and_then(|d| d.and_hms_opt(3, 4, 5))
                .expect("valid");
            assert_eq!(
                rfc3339(far),
                far.and_utc()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "{year}"
            );
            assert_eq!(
                human_date(far),
                far.format("%-d %B %Y").to_string(),
                "{year}"
            );
        }
    }
}

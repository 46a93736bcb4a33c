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
fn rfc3339(time: Timestamp) -> String {
    with_dates(time, |_, rfc3339| rfc3339.to_owned())
}

/// A date as a page shows it (`26 November 2026`).
fn human_date(time: Timestamp) -> String {
    with_dates(time, |human, _| human.to_owned())
}

/// `f` of `time` as [`human_date`] and as [`rfc3339`] write it, both written digit by digit
/// into one buffer on the stack (every item of every list shows both): chrono's formatter
/// interprets a format description each time, `format!`'s padded numbers cost more still, and
/// the buffer is checked for UTF-8 once.
fn with_dates<R>(time: Timestamp, f: impl FnOnce(&str, &str) -> R) -> R {
    use chrono::{Datelike, Timelike};
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
        return f(
            &time.format("%-d %B %Y").to_string(),
            &time
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
    };
    // RFC 3339 first (20 bytes), then the date as shown: at most `30 September 2026`.
    let mut text = *b"0000-00-00T00:00:00Z                 ";
    for (at, n) in [
        (0, year / 100),
        (2, year % 100),
        (5, time.month()),
        (8, time.day()),
        (11, time.hour()),
        (14, time.minute()),
        (17, time.second()),
    ] {
        two_digits(&mut text, at, n);
    }
    let day = time.day();
    let mut end = if day < 10 {
        text[20] = b'0' + day as u8;
        21
    } else {
        two_digits(&mut text, 20, day);
        22
    };
    end += 1;
    for (slot, byte) in text.iter_mut().skip(end).zip(month.bytes()) {
        *slot = byte;
    }
    end += month.len() + 1;
    two_digits(&mut text, end, year / 100);
    two_digits(&mut text, end + 2, year % 100);
    end += 4;
    let text = std::str::from_utf8(text.get(..end).unwrap_or_default()).unwrap_or_default();
    let (rfc3339, human) = text.split_at_checked(20).unwrap_or_default();
    f(human, rfc3339)
}

/// Writes the last two decimal digits of `n` at `at` in `text`.
fn two_digits(text: &mut [u8], at: usize, n: u32) {
    if let Some([tens, ones]) = text.get_mut(at..at + 2) {
        *tens = b'0' + (n / 10 % 10) as u8;
        *ones = b'0' + (n % 10) as u8;
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

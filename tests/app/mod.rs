//! The application (issue 4), end to end: the real binary on SQLite and on MariaDB, users
//! made with its command line, a visitor over HTTPS.
//!
//! - `support`: starting onebox on either backend, the visitor, a look at the database;
//! - `auth`: users, sign-in, sessions, CSRF, throttling;
//! - `settings`: the site's settings, edited by an admin, shown on every page;
//! - `posts`: the blog, the posts API and the editor, and the posts queries beneath them;
//! - `outage`: the database stopped and started again under a running onebox;
//! - `site`: one site (issue 13): one layout for every page, the home page, the feed, the
//!   sitemap, robots.txt, canonical and Open Graph tags, errors by route group.

mod auth;
mod outage;
pub(crate) mod posts;
mod settings;
mod site;
pub mod support;
mod templates;

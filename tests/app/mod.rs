//! The application (issue 4), end to end: the real binary on SQLite and on MariaDB, spoken to
//! over HTTPS with the development CA.
//!
//! - `posts`: the blog, the posts API and the editor, and the posts queries beneath them.

mod posts;

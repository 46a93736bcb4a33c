//! The first five minutes (issue 13): what a new user meets before reading any code.
//!
//! - `readme`: the README's walk-through and API examples, run as they are written (only the
//!   ports and the binary's path are the test's own);
//! - `names`: the addresses `make run` prints open the site (`localhost`, `127.0.0.1`, `::1`),
//!   and `serve` says where the site is and which CA to trust;
//! - `errors`: each error says exactly what happened, once: the variable and its value, the
//!   file and line, the address a server refused;
//! - `static_site`: a plain static site (no `.templates/`) starts, alone or with the
//!   application's built-in templates, which a site replaces file by file.

mod errors;
mod names;
mod readme;
mod static_site;

//! The data layer (issue 4), below the application: the suite's own MariaDB (`harness`), and
//! the schema's migrations on both backends (`migrate`).

mod harness;
pub mod migrate;

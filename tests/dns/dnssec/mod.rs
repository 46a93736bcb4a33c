//! DNSSEC (issue 14): onebox signs the zones in `dns.dnssec.zones` itself.
//!
//! - `cli`: `onebox dnssec ds`, `keys` and `rollover` on the key files, and `onebox check`.

mod cli;

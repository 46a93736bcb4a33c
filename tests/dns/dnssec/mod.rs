//! DNSSEC (issue 14): onebox signs the zones in `dns.dnssec.zones` itself.
//!
//! - `cli`: `onebox dnssec ds`, `keys` and `rollover` on the key files, and `onebox check`;
//! - `validate`: the signed zones served, transferred and validated (unbound, delv, NSD,
//!   ldns-verify-zone), refreshed, and rolled over under validation.

mod cli;
mod validate;

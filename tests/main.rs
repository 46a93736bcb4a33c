//! The integration tests: one binary, a module per area. Each test starts the real `onebox`
//! on ephemeral loopback ports (see `harness`) and talks to it with real clients.

mod harness;
mod web;

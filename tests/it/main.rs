//! The integration tests: one binary, a module per area. Each test starts a
//! real server on 127.0.0.1:0 over a temporary SQLite file (or the real
//! binary) and drives it through `incident-client`; see `support`.

mod support;

mod action_items;
mod attacks;
mod audiences;
mod crash;
mod hardening;
mod lifecycle;
mod listing;
mod operations;
mod seeds;
mod timeline;
mod validation;
mod writes;

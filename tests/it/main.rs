//! The integration tests: one binary, a module per area. Each test starts a
//! real server on 127.0.0.1:0 over a database of its own (or the real
//! binary) and drives it through `incident-client`; see `support`.
//!
//! The database is a temporary SQLite file; with
//! `INCIDENTD_TEST_BACKEND=postgres` it is a fresh PostgreSQL database on the
//! server `INCIDENTD_TEST_POSTGRES` names (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), dropped after the test. Tests
//! of SQLite itself (its files, its backup) run on SQLite either way.

mod support;

mod action_items;
mod attacks;
mod audiences;
mod backend;
mod crash;
mod hardening;
mod lifecycle;
mod listing;
mod operations;
mod replicas;
mod seeds;
mod timeline;
mod validation;
mod writes;

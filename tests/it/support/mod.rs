//! The harness of the integration tests: a real server on 127.0.0.1:0 over a
//! database of its own (or the real binary), driven through
//! `incident-client`; the database, a temporary SQLite file or a PostgreSQL
//! database as `INCIDENTD_TEST_BACKEND` says, read straight past the server;
//! the one rejection assertion; bounded waits.

mod calls;
mod daemon;
mod db;
mod rejection;
mod server;
mod tokens;
mod values;
mod wait;

pub use calls::*;
pub use daemon::*;
pub use db::*;
pub use rejection::*;
pub use server::*;
pub use tokens::*;
pub use values::*;
pub use wait::*;

//! # tutti-client — the management API's client, as the `tutti` binary uses it
//!
//! Everything behind `tutti login`, `logout`, `pieces`, `specs`, `shows`, `export`,
//! `ensembles`, `members`, `users` and `webhooks` (and `tutti wizard --server`): the
//! binary parses the arguments, calls one function of [`commands`] with plain values, and
//! maps a [`ClientError`] to its exit code ([`ClientError::exit_code`]).
//!
//! * [`http`] — one plain HTTP/1.1 request, the error envelope.
//! * [`session`] — stored logins per server and authenticated calls that refresh tokens.
//! * [`commands`] — the commands, one module per resource.
//! * [`output`] — `--json` or tables; [`table`] — the table and date formatting.
//! * [`error`] — [`ClientError`].
//!
//! ```no_run
//! # async fn f() -> Result<(), tutti_client::ClientError> {
//! use tutti_client::{commands, session::{Api, Store}, Page};
//! let mut api = Api::open(Some("http://127.0.0.1:7878"), Store::new(None)?)?;
//! commands::pieces::list(&mut api, None, &Page::default(), false).await?;
//! # Ok(()) }
//! ```
//!
//! Must never: parse command-line arguments (the binary's job), print a password or a
//! token, or send a request that a local check already refuses.

pub mod commands;
pub mod error;
pub mod http;
pub mod output;
pub mod session;
pub mod table;

pub use commands::Page;
pub use error::ClientError;
pub use session::{Api, Store};

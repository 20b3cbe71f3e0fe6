//! After the show: a report people would rather look at than read.
//!
//! From a show's stored snapshots (about one a second, each with the show's health), its
//! override log and the spec it ran, this crate builds the data of the report
//! ([`model::Report`], served as JSON), draws its charts as SVG ([`plot`], with `plotters`),
//! renders one self-contained HTML page ([`html`]), and streams the time series as CSV or
//! JSON ([`series`]). [`load`] reads a show from the store; [`health::Health`] is what the
//! live hub records next to each snapshot.
//!
//! Used by `tutti report` and `tutti export --show` (the binary, on a data directory) and by
//! the API (`GET /api/v1/shows/{id}/report`, `/series`, and the page `/shows/{id}/report`).
//!
//! Must never: write to the store, touch the network, or put unescaped text into a page.

pub mod builder;
pub mod error;
pub mod health;
pub mod html;
pub mod load;
pub mod model;
pub mod plot;
pub mod series;

pub use builder::{Builder, LogEntry, MAX_HEAT_BUCKETS, MAX_LINE_BUCKETS};
pub use error::ReportError;
pub use health::{Health, ZoneHealth};
pub use model::Report;
pub use series::SeriesFormat;

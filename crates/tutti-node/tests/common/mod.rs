//! The test's own `nats-server -js` (see `tutti-testkit`).
#![allow(unused_imports)]

pub use tutti_testkit::{free_port, nats, Nats};

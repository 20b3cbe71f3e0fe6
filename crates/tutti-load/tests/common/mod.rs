//! What the `tutti load` integration tests share: a real server in-process on loopback, with
//! a fresh data directory, the demo piece and a known performer token.

#![allow(dead_code)] // each test file uses what it needs

use tutti_server::{Config, Running};

/// The performer token of [`server`].
pub const TOKEN: &str = "load-test-token";

/// A real server on `127.0.0.1:0` over `dir`, OSC on a free port.
pub async fn server(dir: &std::path::Path) -> Running {
    let defaults = Config::default();
    let cfg = Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        osc: tutti_server::config::OscConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..defaults.osc.clone()
        },
        performer_token: TOKEN.into(),
        ..defaults
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tutti_server::start(cfg, listener)
        .await
        .expect("server starts")
}

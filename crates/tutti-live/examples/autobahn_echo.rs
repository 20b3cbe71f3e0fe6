//! The Autobahn echo endpoint on its own, for running the testsuite by hand:
//! `cargo run -p tutti-live --features autobahn-echo --example autobahn_echo -- 127.0.0.1:9001`
//! (see `docs/conformance/autobahn.md`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("autobahn echo endpoint on ws://{}", listener.local_addr()?);
    tutti_live::echo::serve(listener).await
}

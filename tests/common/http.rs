//! A fake HTTP server for the tests: an axum router served on a free
//! loopback port from a background thread with its own runtime, so a
//! synchronous test (or one with its own runtime) can talk to it.

use std::net::SocketAddr;

/// Serve `app` on 127.0.0.1 at a free port; returns once it listens.
pub fn serve(app: axum::Router) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

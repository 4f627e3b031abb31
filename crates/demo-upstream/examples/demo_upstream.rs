//! Runs the demo upstream by hand, without the `portcullis` binary:
//!
//! ```text
//! cargo run -p portcullis-demo-upstream --example demo_upstream -- --root DIR            # stdio
//! cargo run -p portcullis-demo-upstream --example demo_upstream -- --root DIR --http 127.0.0.1:8931
//! ```

use std::io::{Error, ErrorKind};
use std::path::PathBuf;

use portcullis_demo_upstream::{serve_http, serve_stdio};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let usage = || {
        Error::new(
            ErrorKind::InvalidInput,
            "usage: demo_upstream --root DIR [--http ADDR]",
        )
    };
    let (mut root, mut http) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = args.next().map(PathBuf::from),
            "--http" => http = args.next(),
            _ => return Err(usage()),
        }
    }
    let root = root.ok_or_else(usage)?;
    match http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            eprintln!("demo upstream on http://{}/mcp", listener.local_addr()?);
            serve_http(listener, root).await
        }
        None => serve_stdio(root).await,
    }
}

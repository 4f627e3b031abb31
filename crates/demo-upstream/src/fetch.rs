//! `fetch_url`: one HTTP GET with a timeout and a cap on the body read.
//!
//! The demo itself does not guard against SSRF; the gateway's URL guard does that in front of it.

use std::time::Duration;

use serde_json::Value;

use crate::tools::{Args, error_result, text_result};

const TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_MAX_BYTES: u64 = 64 * 1024;
pub(crate) const MAX_BYTES_LIMIT: u64 = 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Fetcher {
    /// `None` when no client could be built (no TLS roots, say): calls then fail as tool errors.
    client: Option<reqwest::Client>,
}

impl Fetcher {
    pub(crate) fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("portcullis-demo/", env!("CARGO_PKG_VERSION")))
            .build();
        match client {
            Ok(client) => Self {
                client: Some(client),
            },
            Err(e) => {
                tracing::warn!(error = %e, "fetch_url is unavailable: no HTTP client");
                Self { client: None }
            }
        }
    }

    pub(crate) async fn call(&self, args: &Args<'_>) -> Result<Value, String> {
        let url = args.str("url")?;
        let max = args
            .opt_u64("max_bytes", 1, MAX_BYTES_LIMIT)?
            .unwrap_or(DEFAULT_MAX_BYTES);
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Err(format!("not a valid URL: {url}"));
        };
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("only http and https URLs can be fetched".to_owned());
        }
        let Some(client) = &self.client else {
            return Ok(error_result("fetch_url is unavailable on this server"));
        };
        Ok(match get(client, parsed, max).await {
            Ok((status, body, truncated)) => {
                let more = if truncated { "\n[truncated]" } else { "" };
                text_result(format!("HTTP {status}\n\n{body}{more}"))
            }
            Err(e) => error_result(format!("Fetch failed: {}", describe(&e))),
        })
    }
}

/// GETs `url`, reading at most `max` body bytes: (status, body as text, truncated?).
async fn get(
    client: &reqwest::Client,
    url: reqwest::Url,
    max: u64,
) -> Result<(u16, String, bool), reqwest::Error> {
    let mut resp = client.get(url).send().await?;
    let status = resp.status().as_u16();
    let cap = usize::try_from(max).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = resp.chunk().await? {
        let room = cap.saturating_sub(body.len());
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok((
        status,
        String::from_utf8_lossy(&body).into_owned(),
        truncated,
    ))
}

/// A short reason without internals (no source chain dump).
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn call(args: Value) -> Value {
        let map: Map<String, Value> = args.as_object().cloned().unwrap();
        match Fetcher::new().call(&Args(&map)).await {
            Ok(v) => v,
            Err(msg) => error_result(format!("Invalid arguments: {msg}")),
        }
    }

    /// A one-shot HTTP server answering with `body`.
    async fn serve_once(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
        });
        format!("http://{addr}/x")
    }

    #[tokio::test]
    async fn fetches_and_caps_the_body() {
        let url = serve_once("hello world").await;
        let out = call(json!({ "url": url })).await;
        assert_eq!(out["isError"], false);
        assert_eq!(out["content"][0]["text"], "HTTP 200\n\nhello world");

        let url = serve_once("hello world").await;
        let out = call(json!({ "url": url, "max_bytes": 5 })).await;
        assert_eq!(out["content"][0]["text"], "HTTP 200\n\nhello\n[truncated]");
    }

    #[tokio::test]
    async fn bad_arguments_and_failures_are_tool_errors() {
        for args in [
            json!({ "url": "ftp://example.invalid/" }),
            json!({ "url": "not a url" }),
            json!({ "url": "http://127.0.0.1:9/", "max_bytes": 0 }),
            json!({ "url": 5 }),
        ] {
            let out = call(args.clone()).await;
            assert_eq!(out["isError"], true, "{args}");
        }
        // Port 9 (discard) is closed on test machines: a connect failure, not a crash.
        let out = call(json!({ "url": "http://127.0.0.1:9/" })).await;
        assert_eq!(out["isError"], true);
    }
}

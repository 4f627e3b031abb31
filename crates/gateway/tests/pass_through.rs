//! Long results pass through the gateway as they arrive (`limits.stream_results_above`): the
//! client reads the beginning of a result while the upstream still holds back its end, links
//! get the upstream's prefix and hidden characters go on the way, the end of the reply waits
//! for the audit record (a record that cannot be written breaks the reply off), and a result
//! that breaks off never reaches the client whole. Results the guard must see whole (an
//! `outputSchema`) are still held, within `max_response_bytes`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt as _;
use portcullis_audit::{Decision, Record, Sealed};
use portcullis_gateway::Gateway;
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::Notify;

/// Bytes of `a` the upstream sends before it waits, and after.
const BEFORE: usize = 2 << 20;
const AFTER: usize = 1 << 20;

/// An upstream whose `big` tool answers with a long text in two parts: the second only once
/// `release` is notified. `broken` answers with the first part and then ends the body.
#[derive(Clone)]
struct Upstream {
    release: Arc<Notify>,
}

#[cfg(test)]
fn reply(id: &Value, result: Value) -> Response {
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

#[cfg(test)]
async fn mcp(State(up): State<Upstream>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap();
    let id = req["id"].clone();
    let Some(method) = req["method"].as_str() else {
        return http::StatusCode::ACCEPTED.into_response();
    };
    match method {
        "server/discover" => reply(
            &id,
            json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}}),
        ),
        "tools/list" => reply(
            &id,
            json!({"resultType": "complete", "tools": [
                {"name": "big", "inputSchema": {"type": "object"}},
                {"name": "big_sse", "inputSchema": {"type": "object"}},
                {"name": "broken", "inputSchema": {"type": "object"}},
                {"name": "typed", "inputSchema": {"type": "object"},
                 "outputSchema": {"type": "object"}},
            ]}),
        ),
        "tools/call" => {
            let name = req["params"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            // `big_sse` answers on an SSE stream: a comment and fields first, the response's
            // JSON over two `data` lines.
            let sse = name.ends_with("_sse");
            let head = format!(
                r#"{}{{"jsonrpc":"2.0",{}"id":{id},"result":{{"content":[{{"type":"resource_link","uri":"file:///x","name":"x"}},{{"type":"text","text":"{}"#,
                if sse {
                    ": hi\nevent: message\nid: 7\ndata: "
                } else {
                    ""
                },
                if sse { "\r\ndata:" } else { "" },
                "a".repeat(BEFORE)
            );
            let name = name.trim_end_matches("_sse").to_owned();
            let release = Arc::clone(&up.release);
            let rest = async move {
                match name.as_str() {
                    "big" => {
                        release.notified().await;
                        // A zero-width space, raw and escaped: hidden, removed on the way.
                        let tail = format!(
                            "{}\u{200B}b\\u200b\"}}]}}}}{}",
                            "a".repeat(AFTER),
                            if sse { "\n\n" } else { "" }
                        );
                        Ok::<_, std::io::Error>(Bytes::from(tail))
                    }
                    "typed" => Ok(Bytes::from(format!(
                        "{}\"}}],\"structuredContent\":{{}}}}}}",
                        "a".repeat(AFTER)
                    ))),
                    _ => Err(std::io::Error::other("upstream broke off")),
                }
            };
            let pieces =
                futures::stream::iter([Ok(Bytes::from(head))]).chain(futures::stream::once(rest));
            Response::builder()
                .header(
                    "content-type",
                    if sse {
                        "text/event-stream"
                    } else {
                        "application/json"
                    },
                )
                .body(Body::from_stream(pieces))
                .unwrap()
        }
        _ => reply(&id, json!({})),
    }
}

#[cfg(test)]
async fn serve_upstream(up: Upstream) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/mcp", post(mcp)).with_state(up);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A gateway in front of `upstream` (named `up`: names and links get `up__`), serving on a
/// port of its own; results above 64 KiB pass through (results are not redacted), held ones
/// stop at 1 MiB.
#[cfg(test)]
async fn gateway(
    dir: &std::path::Path,
    upstream: SocketAddr,
    call_timeout: &str,
) -> (Arc<Gateway>, SocketAddr) {
    let policy = dir.join("allow.cedar");
    std::fs::write(&policy, "permit (principal, action, resource);\n").unwrap();
    let config = format!(
        r#"
[listen]
addr = "127.0.0.1:0"
[storage]
url = "sqlite://{db}"
[auth]
dangerous_allow_anonymous = true
[authz]
policies = ["{policy}"]
[guard]
redact_results = false
[limits]
max_response_bytes = "1MiB"
stream_results_above = "64KiB"
call_timeout = "{call_timeout}"
[[upstream]]
name = "up"
url = "http://{upstream}/mcp"
"#,
        db = dir.join("store.db").display(),
        policy = policy.display(),
    );
    let config =
        portcullis_config::from_str(&config, None, &BTreeMap::<String, String>::new()).unwrap();
    let gw = Gateway::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(portcullis_gateway::serve::serve(
        Arc::clone(&gw),
        listener,
        64,
        None,
        std::future::pending(),
    ));
    (gw, addr)
}

/// An upstream and a gateway in front of it, for one test.
#[cfg(test)]
struct Setup {
    _dir: tempfile::TempDir,
    up: Upstream,
    gw: Arc<Gateway>,
    addr: SocketAddr,
}

#[cfg(test)]
async fn setup(call_timeout: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let up = Upstream {
        release: Arc::new(Notify::new()),
    };
    let (gw, addr) = gateway(dir.path(), serve_upstream(up.clone()).await, call_timeout).await;
    Setup {
        _dir: dir,
        up,
        gw,
        addr,
    }
}

/// Reads the rest of a reply into `body`: `Err` when it broke off instead of ending.
#[cfg(test)]
async fn read_rest(resp: &mut reqwest::Response, body: &mut Vec<u8>) -> reqwest::Result<()> {
    while let Some(piece) = resp.chunk().await? {
        body.extend_from_slice(&piece);
    }
    Ok(())
}

/// A 2026-07-28 `tools/call` of `name` through the gateway.
#[cfg(test)]
async fn call(gateway: SocketAddr, name: &str) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call", "params": {
        "name": name, "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "pass-through-test", "version": "1"},
        },
    }});
    reqwest::Client::new()
        .post(format!("http://{gateway}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", name)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The audit records of `tools/call`, oldest first.
#[cfg(test)]
async fn call_records(gw: &Gateway) -> Vec<Record> {
    gw.audit.flush().await.unwrap();
    let mut pages = portcullis_audit::query::Pages::all(gw.audit.store());
    let mut out = Vec::new();
    while let Some(page) = pages.next().await.unwrap() {
        out.extend(page.into_iter().filter(|r| r.method == "tools/call"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_result_reaches_the_client_before_the_upstream_has_sent_all_of_it() {
    passes_through_before_the_upstream_ends("up__big").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_result_on_an_sse_stream_reaches_the_client_before_its_end() {
    passes_through_before_the_upstream_ends("up__big_sse").await;
}

#[cfg(test)]
async fn passes_through_before_the_upstream_ends(tool: &str) {
    let Setup { _dir, up, gw, addr } = setup("30s").await;

    let mut resp = call(addr, tool).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    // The upstream holds back the end of its result until the client has read 1 MiB of it:
    // a gateway that held results whole would wait here until the bound below.
    let mut body = Vec::new();
    let first = async {
        while body.len() < 1 << 20 {
            let Some(piece) = resp.chunk().await.unwrap() else {
                panic!("body ended early: {}", String::from_utf8_lossy(&body));
            };
            body.extend_from_slice(&piece);
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), first)
        .await
        .expect("the first MiB never came: the result was held");
    up.release.notify_one();
    while let Some(piece) = resp.chunk().await.unwrap() {
        body.extend_from_slice(&piece);
    }

    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["id"], 41);
    let result = &reply["result"];
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["content"][0]["uri"], "up__file:///x");
    let text = result["content"][1]["text"].as_str().unwrap();
    assert_eq!(text.len(), BEFORE + AFTER + 1);
    assert!(text.ends_with("ab") && !text.contains('\u{200B}'));

    // The record: allowed, with the size and digest of the result's text as the client got it.
    let records = call_records(&gw).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].decision, Decision::Allow);
    let Some(Sealed::Redacted { value }) = &records[0].result else {
        panic!("no result in the record: {:?}", records[0].result);
    };
    let start = body.windows(10).position(|w| w == b"\"result\":{").unwrap() + 9;
    let text = &body[start..body.len() - 1];
    assert_eq!(value["passedThrough"]["bytes"], text.len());
    assert_eq!(
        value["passedThrough"]["sha256"],
        hex::encode(sha2::Sha256::digest(text))
    );
    assert_eq!(value["passedThrough"]["hiddenRemoved"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_breaks_off_never_reaches_the_client_whole() {
    let Setup { _dir, gw, addr, .. } = setup("30s").await;

    let mut resp = call(addr, "up__broken").await;
    assert_eq!(resp.status(), 200);
    let mut body = Vec::new();
    let ended = read_rest(&mut resp, &mut body).await;
    assert!(ended.is_err(), "the reply ended as if complete");
    assert!(body.len() > BEFORE, "{} bytes passed", body.len());
    assert!(serde_json::from_slice::<Value>(&body).is_err());

    let records = call_records(&gw).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].decision, Decision::Error);
    // The upstream's body broke: not a timeout, not a refusal.
    let reason = records[0].reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("upstream up ") && !reason.contains("timed out"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_with_an_output_schema_is_held_and_bounded() {
    let Setup { _dir, gw, addr, .. } = setup("30s").await;

    // 3 MiB, over `max_response_bytes`: the guard must see all of it, so it is refused.
    let resp = call(addr, "up__typed").await;
    let reply: Value = resp.json().await.unwrap();
    assert!(reply.get("result").is_none(), "{reply}");
    assert_eq!(reply["id"], 41);
    assert!(reply["error"]["code"].is_i64(), "{reply}");

    let records = call_records(&gw).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].decision, Decision::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_stalls_past_the_call_timeout_breaks_off() {
    // `big` never gets its release: the upstream stalls after 2 MiB.
    let Setup { _dir, gw, addr, .. } = setup("1s").await;

    let mut resp = call(addr, "up__big").await;
    let mut body = Vec::new();
    let ended = read_rest(&mut resp, &mut body).await;
    assert!(ended.is_err(), "the reply ended as if complete");
    assert!(body.len() > BEFORE, "{} bytes passed", body.len());

    let records = call_records(&gw).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].decision, Decision::Error);
    let reason = records[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("timed out"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_whose_record_cannot_be_written_never_reaches_the_client_whole() {
    let Setup { _dir, up, gw, addr } = setup("30s").await;
    // From now on no audit record can be written.
    portcullis_store::sqlx::query(
        "CREATE TRIGGER refuse_records BEFORE INSERT ON audit_records \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(gw.audit.store().pool())
    .await
    .unwrap();

    up.release.notify_one();
    let mut resp = call(addr, "up__big").await;
    assert_eq!(resp.status(), 200);
    let mut body = Vec::new();
    let ended = read_rest(&mut resp, &mut body).await;
    // All of the result's text came, but not the reply's end: no whole result.
    assert!(ended.is_err(), "the reply ended as if complete");
    assert!(body.len() > BEFORE + AFTER, "{} bytes passed", body.len());
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

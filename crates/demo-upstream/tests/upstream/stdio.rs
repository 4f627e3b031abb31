//! The stdio loop over an in-memory pipe: legacy and modern requests, bad lines, cancellation,
//! legacy elicitation, and shutdown at end of input.

use std::time::Duration;

use portcullis_demo_upstream::serve_stream;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};
use tokio::task::JoinHandle;

const MODERN_META: &str = "io.modelcontextprotocol/protocolVersion";
const CAPS_META: &str = "io.modelcontextprotocol/clientCapabilities";

struct Client {
    _root: tempfile::TempDir,
    writer: DuplexStream,
    lines: Lines<BufReader<DuplexStream>>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Client {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("hello.txt"), "hello").unwrap();
        // One pipe per direction, so dropping `writer` is end of input for the server.
        let (writer, server_read) = tokio::io::duplex(1 << 16);
        let (server_write, read) = tokio::io::duplex(1 << 16);
        let server = tokio::spawn(serve_stream(
            server_read,
            server_write,
            root.path().to_path_buf(),
        ));
        Self {
            _root: root,
            writer,
            lines: BufReader::new(read).lines(),
            server,
        }
    }

    async fn send_raw(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
    }

    async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a reply within 10 s")
            .unwrap()
            .expect("a line before end of output");
        serde_json::from_str(&line).unwrap()
    }

    async fn request(&mut self, id: i64, method: &str, params: Value) -> Value {
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        let reply = self.recv().await;
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }
}

fn modern(mut params: Value, caps: Value) -> Value {
    params["_meta"] = json!({ MODERN_META: "2026-07-28", CAPS_META: caps });
    params
}

#[tokio::test]
async fn legacy_session_survives_bad_lines() {
    let mut c = Client::start();
    let early = c.request(1, "tools/list", json!({})).await;
    assert_eq!(
        early["error"]["code"], -32602,
        "legacy requests need initialize first"
    );
    let init = c
        .request(
            2,
            "initialize",
            json!({ "protocolVersion": "2025-06-18", "capabilities": {} }),
        )
        .await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    c.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }))
        .await;

    c.send_raw("this is not json").await;
    assert_eq!(c.recv().await["error"]["code"], -32700);
    c.send_raw(r#"[{"jsonrpc":"2.0","id":9,"method":"ping"}]"#)
        .await;
    assert_eq!(c.recv().await["error"]["code"], -32600);
    c.send_raw(r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":[]}"#)
        .await;
    let bad_params = c.recv().await;
    assert_eq!(
        (
            bad_params["id"].clone(),
            bad_params["error"]["code"].clone()
        ),
        (json!(10), json!(-32602))
    );
    c.send_raw("   ").await;

    let echo = c
        .request(
            3,
            "tools/call",
            json!({ "name": "echo", "arguments": { "message": "hi" } }),
        )
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "hi");
    assert!(echo["result"].get("resultType").is_none());
    assert_eq!(c.request(4, "ping", json!({})).await["result"], json!({}));
    assert_eq!(
        c.request(5, "nope", json!({})).await["error"]["code"],
        -32601
    );

    drop(c.writer);
    c.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn modern_requests_need_no_initialize() {
    let mut c = Client::start();
    let discover = c
        .request(1, "server/discover", modern(json!({}), json!({})))
        .await;
    assert_eq!(discover["result"]["supportedVersions"][0], "2026-07-28");
    let echo = c
        .request(
            2,
            "tools/call",
            modern(
                json!({ "name": "echo", "arguments": { "message": "m" } }),
                json!({}),
            ),
        )
        .await;
    assert_eq!(echo["result"]["resultType"], "complete");
    assert_eq!(echo["result"]["structuredContent"]["message"], "m");

    let mut old = modern(json!({}), json!({}));
    old["_meta"][MODERN_META] = json!("1900-01-01");
    let unsupported = c.request(3, "tools/list", old).await;
    assert_eq!(unsupported["error"]["code"], -32022);
    assert_eq!(unsupported["error"]["data"]["requested"], "1900-01-01");
    let no_caps = c
        .request(
            4,
            "tools/list",
            json!({ "_meta": { MODERN_META: "2026-07-28" } }),
        )
        .await;
    assert_eq!(no_caps["error"]["code"], -32602);
}

#[tokio::test]
async fn cancelled_requests_stop_and_send_nothing_more() {
    let mut c = Client::start();
    let mut params = modern(
        json!({ "name": "slow", "arguments": { "seconds": 3, "steps": 30 } }),
        json!({}),
    );
    params["_meta"]["progressToken"] = json!("p");
    c.send(json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params }))
        .await;
    let first = c.recv().await;
    assert_eq!(first["method"], "notifications/progress");
    assert_eq!(first["params"]["progressToken"], "p");
    c.send(json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 7, "reason": "test" } })).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.send(json!({ "jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": modern(json!({}), json!({})) })).await;
    let mut late_progress = 0;
    loop {
        let msg = c.recv().await;
        assert_ne!(msg["id"], 7, "a cancelled request gets no response");
        if msg["id"] == 8 {
            break;
        }
        late_progress += 1;
    }
    assert!(
        late_progress <= 1,
        "progress stopped after cancellation ({late_progress} late)"
    );
}

#[tokio::test]
async fn legacy_elicitation_round_trips_over_the_pipe() {
    let mut c = Client::start();
    let caps = json!({ "elicitation": {} });
    c.request(
        1,
        "initialize",
        json!({ "protocolVersion": "2025-11-25", "capabilities": caps }),
    )
    .await;
    c.send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "ask_name" } })).await;
    let ask = c.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["mode"], "form");
    c.send(json!({ "jsonrpc": "2.0", "id": ask["id"], "result": { "action": "accept", "content": { "name": "Ada" } } })).await;
    let done = c.recv().await;
    assert_eq!(done["id"], 2);
    assert_eq!(done["result"]["content"][0]["text"], "Hello, Ada");
}

#[tokio::test]
async fn end_of_input_ends_the_loop_even_with_a_request_waiting() {
    let mut c = Client::start();
    c.request(
        1,
        "initialize",
        json!({ "protocolVersion": "2025-11-25", "capabilities": { "elicitation": {} } }),
    )
    .await;
    c.send(json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": { "name": "ask_name" } })).await;
    assert_eq!(c.recv().await["method"], "elicitation/create");
    drop(c.writer);
    let ended = tokio::time::timeout(Duration::from_secs(5), c.server).await;
    ended.expect("the loop ends promptly").unwrap().unwrap();
    let last = c.lines.next_line().await.unwrap().unwrap();
    let last: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(
        (last["id"].clone(), last["result"]["isError"].clone()),
        (json!(2), json!(true))
    );
}

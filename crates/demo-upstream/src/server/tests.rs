//! Table tests for request handling, with no transport.

use super::*;
use crate::jsonrpc::{Message, RESOURCE_NOT_FOUND_LEGACY, parse};
use crate::resources::PAGE_SIZE;

pub(crate) fn req(method: &str, params: Value) -> Request {
    let text = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    match parse(text.to_string().as_bytes()) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

pub(crate) fn ctx(era: Era, elicitation: bool) -> Ctx {
    Ctx {
        era,
        caps: ClientCaps {
            elicitation_form: elicitation,
        },
        peer: Peer::none(),
    }
}

pub(crate) const LEGACY: Era = Era::Legacy(Legacy::V2025_11_25);

pub(crate) fn server() -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("hello.txt"), "hello, world").unwrap();
    let server = Server::new(tmp.path()).unwrap();
    (tmp, server)
}

#[test]
fn initialize_negotiates_the_legacy_version() {
    let (_tmp, server) = server();
    let rows = [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2025-03-26", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
    ];
    for (asked, answered) in rows {
        let params = json!({ "protocolVersion": asked, "capabilities": { "elicitation": {} } });
        let (version, caps, result) = server
            .initialize(&req("initialize", params).params)
            .unwrap();
        assert_eq!(version.as_str(), answered);
        assert!(caps.elicitation_form);
        assert_eq!(result["protocolVersion"], answered);
        assert_eq!(result["serverInfo"]["name"], "portcullis-demo");
        assert_eq!(
            result["capabilities"]["tools"],
            json!({ "listChanged": false })
        );
        assert_eq!(
            result["capabilities"]["resources"],
            json!({ "subscribe": false })
        );
        assert_eq!(result["capabilities"]["prompts"], json!({}));
        assert_eq!(result["capabilities"]["logging"], json!({}));
        assert!(result.get("resultType").is_none());
    }
    let err = server.initialize(&Map::new()).unwrap_err();
    assert_eq!(err.code, -32602);
}

#[tokio::test]
async fn discover_is_modern_only_and_fully_shaped() {
    let (_tmp, server) = server();
    let result = server
        .handle(&req("server/discover", json!({})), &ctx(Era::Modern, false))
        .await
        .unwrap();
    assert_eq!(
        result["supportedVersions"],
        json!(["2026-07-28", "2025-11-25", "2025-06-18"])
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(result["_meta"][META_SERVER_INFO]["name"], "portcullis-demo");
    assert_eq!(result["cacheScope"], "public");
    assert!(result["ttlMs"].as_u64().is_some());
    assert!(result["capabilities"]["tools"].is_object());
    let legacy = server
        .handle(&req("server/discover", json!({})), &ctx(LEGACY, false))
        .await;
    assert_eq!(legacy.unwrap_err().code, -32601);
}

#[tokio::test]
async fn methods_answer_per_era() {
    let (_tmp, server) = server();
    // (method, params, era, Ok(resultType present) | Err(code))
    let rows: Vec<(&str, Value, Era, Result<bool, i64>)> = vec![
        ("ping", json!({}), LEGACY, Ok(false)),
        ("ping", json!({}), Era::Modern, Err(-32601)),
        ("initialize", json!({}), Era::Modern, Err(-32601)),
        (
            "logging/setLevel",
            json!({ "level": "info" }),
            LEGACY,
            Ok(false),
        ),
        (
            "logging/setLevel",
            json!({ "level": "loud" }),
            LEGACY,
            Err(-32602),
        ),
        ("tools/list", json!({}), LEGACY, Ok(false)),
        ("tools/list", json!({}), Era::Modern, Ok(true)),
        (
            "tools/list",
            json!({ "cursor": "x" }),
            Era::Modern,
            Err(-32602),
        ),
        ("prompts/list", json!({}), Era::Modern, Ok(true)),
        ("resources/templates/list", json!({}), Era::Modern, Ok(true)),
        (
            "resources/subscribe",
            json!({ "uri": "file:///x" }),
            LEGACY,
            Err(-32601),
        ),
        ("no/such", json!({}), LEGACY, Err(-32601)),
        ("no/such", json!({}), Era::Modern, Err(-32601)),
    ];
    for (method, params, era, want) in rows {
        let got = server.handle(&req(method, params), &ctx(era, false)).await;
        let got = got
            .map(|r| r.get("resultType").is_some())
            .map_err(|e| e.code);
        assert_eq!(got, want, "{method} in {era:?}");
    }
}

#[tokio::test]
async fn list_results_carry_cache_hints_only_in_the_modern_era() {
    let (_tmp, server) = server();
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        let modern = server
            .handle(&req(method, json!({})), &ctx(Era::Modern, false))
            .await
            .unwrap();
        assert!(modern["ttlMs"].is_u64(), "{method}");
        assert_eq!(modern["cacheScope"], "public", "{method}");
        let legacy = server
            .handle(&req(method, json!({})), &ctx(LEGACY, false))
            .await
            .unwrap();
        assert!(legacy.get("ttlMs").is_none(), "{method}");
        assert!(legacy.get("_meta").is_none(), "{method}");
    }
}

#[tokio::test]
async fn resources_page_by_fifty() {
    let (tmp, server) = server();
    for i in 0..119 {
        std::fs::write(tmp.path().join(format!("f{i:03}.txt")), "x").unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let page = server
            .handle(&req("resources/list", params), &ctx(Era::Modern, false))
            .await
            .unwrap();
        let items = page["resources"].as_array().unwrap();
        assert!(items.len() <= PAGE_SIZE);
        for item in items {
            assert_eq!(item["mimeType"], "text/plain");
            assert!(item["uri"].as_str().unwrap().starts_with("file:///"));
            seen.push(item["name"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 120);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
    let bad = server
        .handle(
            &req("resources/list", json!({ "cursor": "bogus" })),
            &ctx(LEGACY, false),
        )
        .await;
    assert_eq!(bad.unwrap_err().code, -32602);
}

#[tokio::test]
async fn resources_read_inside_the_root_only() {
    let (tmp, server) = server();
    std::fs::write(tmp.path().join("bin.dat"), [0xff, 0x00, 0x01]).unwrap();
    let listed = server
        .handle(&req("resources/list", json!({})), &ctx(LEGACY, false))
        .await
        .unwrap();
    let uri = listed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "hello.txt")
        .map(|r| r["uri"].as_str().unwrap().to_owned())
        .unwrap();
    let read = server
        .handle(
            &req("resources/read", json!({ "uri": uri })),
            &ctx(Era::Modern, false),
        )
        .await
        .unwrap();
    assert_eq!(read["contents"][0]["text"], "hello, world");
    assert_eq!(read["contents"][0]["uri"], uri.as_str());
    assert_eq!(read["resultType"], "complete");

    let bin = crate::resources::file_uri(&server.root.dir().join("bin.dat"));
    let read = server
        .handle(
            &req("resources/read", json!({ "uri": bin })),
            &ctx(LEGACY, false),
        )
        .await
        .unwrap();
    assert_eq!(read["contents"][0]["blob"], "/wAB");

    let missing = [
        "file:///etc/passwd".to_owned(),
        format!("{uri}.nope"),
        "https://example.com/".to_owned(),
        format!("file://{}/../../etc/passwd", server.root.dir().display()),
    ];
    for uri in missing {
        let legacy = server
            .handle(
                &req("resources/read", json!({ "uri": uri })),
                &ctx(LEGACY, false),
            )
            .await;
        let legacy = legacy.unwrap_err();
        assert_eq!(legacy.code, RESOURCE_NOT_FOUND_LEGACY, "{uri}");
        assert_eq!(legacy.data, Some(json!({ "uri": uri })));
        let modern = server
            .handle(
                &req("resources/read", json!({ "uri": uri })),
                &ctx(Era::Modern, false),
            )
            .await;
        assert_eq!(modern.unwrap_err().code, -32602, "{uri}");
    }
    let no_uri = server
        .handle(&req("resources/read", json!({})), &ctx(LEGACY, false))
        .await;
    assert_eq!(no_uri.unwrap_err().code, -32602);
}

#[tokio::test]
async fn prompts_list_and_get() {
    let (_tmp, server) = server();
    let list = server
        .handle(&req("prompts/list", json!({})), &ctx(LEGACY, false))
        .await
        .unwrap();
    assert_eq!(list["prompts"][0]["name"], "summarize");
    assert_eq!(
        list["prompts"][0]["arguments"][0],
        json!({
            "name": "path", "description": "Path of the file, relative to the demo directory", "required": true,
        })
    );
    let params = json!({ "name": "summarize", "arguments": { "path": "hello.txt" } });
    let got = server
        .handle(&req("prompts/get", params), &ctx(Era::Modern, false))
        .await
        .unwrap();
    assert_eq!(got["messages"].as_array().unwrap().len(), 1);
    assert_eq!(got["resultType"], "complete");
    assert!(got.get("ttlMs").is_none());
}

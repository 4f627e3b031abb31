use proptest::prelude::*;

use super::*;

fn kind(r: &Result<Message, ParseError>) -> String {
    match r {
        Ok(Message::Request(r)) => format!("request {} {}", r.id, r.method),
        Ok(Message::Notification(n)) => format!("notification {}", n.method),
        Ok(Message::Response(r)) => format!("response {:?}", r.id),
        Err(e) => format!("error {}", e.code().code()),
    }
}

#[test]
fn envelope_table() {
    let rows: &[(&str, &str)] = &[
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            "request 1 tools/list",
        ),
        (
            r#"{"jsonrpc":"2.0","id":"a","method":"x","params":{}}"#,
            "request \"a\" x",
        ),
        (
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "notification notifications/initialized",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"result":{}}"#,
            "response Some(Int(7))",
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-1,"message":"m"}}"#,
            "response Some(Int(7))",
        ),
        (r#"not json"#, "error -32700"),
        (r#"{"jsonrpc":"2.0","id":1,"method":"x""#, "error -32700"),
        (r#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#, "error -32600"),
        (r#"[1,"#, "error -32700"),
        (r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, "error -32600"),
        (r#"{"id":1,"method":"x"}"#, "error -32600"),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            "error -32600",
        ),
        (r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#, "error -32600"),
        (r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, "error -32600"),
        (r#"{"jsonrpc":"2.0","id":1,"method":5}"#, "error -32600"),
        (r#"{"jsonrpc":"2.0","id":1,"method":""}"#, "error -32600"),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
            "error -32600",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#,
            "error -32600",
        ),
        (r#"{"jsonrpc":"2.0","result":{}}"#, "error -32600"),
        (r#"{"jsonrpc":"2.0"}"#, "error -32600"),
        (r#"42"#, "error -32600"),
        (r#""#, "error -32700"),
    ];
    for (input, want) in rows {
        assert_eq!(kind(&parse(input.as_bytes(), 64)), *want, "input: {input}");
    }
}

#[test]
fn invalid_request_keeps_the_id() {
    let err = parse(br#"{"jsonrpc":"1.0","id":"x","method":"m"}"#, 64).unwrap_err();
    assert_eq!(err.id(), Some(&Id::Str("x".into())));
}

#[test]
fn deep_nesting_is_rejected_before_parsing() {
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}1{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        parse(body.as_bytes(), 64).unwrap_err(),
        ParseError::TooDeep(64)
    );
}

#[test]
fn params_pass_through_verbatim() {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"z":1.000,"future":[true]}}}"#;
    let Ok(Message::Request(req)) = parse(body, 64) else {
        panic!("not a request")
    };
    assert_eq!(
        req.params.unwrap().get(),
        r#"{"name":"x","_meta":{"z":1.000,"future":[true]}}"#
    );
}

#[test]
fn serialization_round_trips() {
    let body = br#"{"jsonrpc":"2.0","id":"q","method":"m","params":{"a":1}}"#;
    let msg = parse(body, 64).unwrap();
    assert_eq!(msg.to_bytes(), body.to_vec());
    let err = Response::error(None, ErrorObject::new(ErrorCode::ParseError, "bad"));
    assert_eq!(
        String::from_utf8(err.to_bytes()).unwrap(),
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#
    );
}

proptest! {
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes, 16);
    }

    #[test]
    fn never_panics_on_jsonish(s in r#"[\{\}\[\]":,0-9a-z\\ .-]{0,256}"#) {
        let _ = parse(s.as_bytes(), 16);
    }

    #[test]
    fn valid_requests_round_trip(id in any::<i64>(), method in "[a-z/_]{1,20}") {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#);
        let msg = parse(body.as_bytes(), 16).unwrap();
        prop_assert_eq!(msg.to_bytes(), body.into_bytes());
    }
}

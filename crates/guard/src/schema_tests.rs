use serde_json::json;

use super::*;

fn tool() -> CompiledTool {
    CompiledTool::compile(&json!({
        "name": "search",
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "maxLength": 10, "pattern": "^[a-z ]+$"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "mode": {"enum": ["fast", "full"]},
                "filters": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"field": {"type": "string"}}, "required": ["field"]}
                }
            },
            "required": ["query"],
            "additionalProperties": false
        },
        "outputSchema": {
            "type": "object",
            "properties": {"hits": {"type": "integer"}},
            "required": ["hits"]
        }
    }))
    .unwrap()
}

/// The public messages, reviewed: each names the field (pointer) and the keyword.
#[test]
fn violation_messages() {
    let t = tool();
    let rows = [
        (json!({"query": "ok"}), "ok"),
        (
            json!({"query": "ok", "limit": 5, "mode": "fast", "filters": [{"field": "a"}]}),
            "ok",
        ),
        (
            json!({}),
            "arguments: \"query\" is a required property (required)",
        ),
        (
            json!({"query": 5}),
            "/query: value is not of type \"string\" (type)",
        ),
        (
            json!({"query": "far too long text"}),
            "/query: value is longer than 10 characters (maxLength)",
        ),
        (
            json!({"query": "DROP;"}),
            "/query: value does not match \"^[a-z ]+$\" (pattern)",
        ),
        (
            json!({"query": "a", "limit": 0}),
            "/limit: value is less than the minimum of 1 (minimum)",
        ),
        (
            json!({"query": "a", "limit": 101}),
            "/limit: value is greater than the maximum of 100 (maximum)",
        ),
        (
            json!({"query": "a", "limit": 1.5}),
            "/limit: value is not of type \"integer\" (type)",
        ),
        (
            json!({"query": "a", "mode": "slow"}),
            "/mode: value is not one of \"fast\" or \"full\" (enum)",
        ),
        (
            json!({"query": "a", "filters": [{"field": "x"}, {}]}),
            "/filters/1: \"field\" is a required property (required)",
        ),
        (
            json!({"query": "a", "extra": true}),
            "arguments: Additional properties are not allowed ('extra' was unexpected) (additionalProperties)",
        ),
        (
            json!("not an object"),
            "arguments: value is not of type \"object\" (type)",
        ),
    ];
    let got: Vec<String> = rows
        .iter()
        .map(|(args, _)| match check_args(&t, Some(args)) {
            Ok(()) => "ok".to_owned(),
            Err(v) => v.to_string(),
        })
        .collect();
    let want: Vec<&str> = rows.iter().map(|(_, w)| *w).collect();
    assert_eq!(got, want);
    // Absent arguments are checked as {}.
    assert_eq!(check_args(&t, None).unwrap_err().keyword, "required");
}

#[test]
fn output_schema_requires_valid_structured_content() {
    let t = tool();
    assert_eq!(
        check_output(
            &t,
            &json!({"content": [], "structuredContent": {"hits": 3}})
        ),
        Ok(())
    );
    assert_eq!(
        check_output(&t, &json!({"content": [{"type": "text", "text": "3"}]})),
        Err(OutputViolation::MissingStructuredContent)
    );
    // An error result need not carry structured content.
    assert_eq!(
        check_output(&t, &json!({"content": [], "isError": true})),
        Ok(())
    );
    let err = check_output(&t, &json!({"structuredContent": {"hits": "many"}})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "structuredContent /hits: value is not of type \"integer\" (type)"
    );
    // A tool without outputSchema: anything goes.
    let plain =
        CompiledTool::compile(&json!({"name": "x", "inputSchema": {"type": "object"}})).unwrap();
    assert_eq!(check_output(&plain, &json!({"content": []})), Ok(()));
    assert_eq!(check_args(&plain, Some(&json!({"anything": 1}))), Ok(()));
}

#[test]
fn remote_refs_are_never_fetched_and_fail_closed() {
    // 192.0.2.1 is TEST-NET-1: nothing answers there, so a fetch attempt would hang until a
    // timeout; an offline validator refuses at once.
    let started = std::time::Instant::now();
    let rows = [
        json!({"name": "r", "inputSchema": {"$ref": "http://192.0.2.1/schema.json"}}),
        json!({"name": "r", "inputSchema": {"type": "object", "properties": {"a": {"$ref": "https://example.com/s#/x"}}}}),
        json!({"name": "r", "inputSchema": {"$ref": "file:///etc/passwd"}}),
        json!({"name": "r", "inputSchema": {"$schema": "http://192.0.2.1/custom-meta", "type": "object"}}),
    ];
    for def in rows {
        let err = CompiledTool::compile(&def).unwrap_err();
        assert_eq!(err.which, "inputSchema", "{def}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // Local refs work.
    let local = json!({"name": "l", "inputSchema": {
        "type": "object", "$defs": {"n": {"type": "integer"}},
        "properties": {"a": {"$ref": "#/$defs/n"}}
    }});
    let t = CompiledTool::compile(&local).unwrap();
    assert!(check_args(&t, Some(&json!({"a": "x"}))).is_err());
}

#[test]
fn invalid_schemas_fail_closed() {
    let rows = [
        json!({"name": "b", "inputSchema": {"type": "objekt"}}),
        json!({"name": "b", "inputSchema": {"properties": {"a": {"pattern": "("}}}}),
        json!({"name": "b", "outputSchema": {"minimum": "ten"}}),
    ];
    for def in rows {
        assert!(CompiledTool::compile(&def).is_err(), "{def}");
    }
}

#[test]
fn cache_compiles_each_definition_once() {
    let cache = SchemaCache::new();
    let a = json!({"name": "a", "inputSchema": {"type": "object"}});
    let a_reordered = json!({"inputSchema": {"type": "object"}, "name": "a"});
    let b = json!({"name": "a", "description": "changed", "inputSchema": {"type": "object"}});
    let first = cache.get(&a).unwrap();
    let again = cache.get(&a_reordered).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let changed = cache.get(&b).unwrap();
    assert!(!Arc::ptr_eq(&first, &changed));
    assert_eq!(cache.len(), 2);
}

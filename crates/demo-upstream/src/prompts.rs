//! Prompts: one, `summarize`, taking the `path` of a file to summarize.

use serde_json::{Map, Value, json};

use crate::jsonrpc::RpcError;

pub(crate) fn list() -> Value {
    json!({
        "prompts": [{
            "name": "summarize",
            "title": "Summarize a file",
            "description": "Asks the model to read a file from the demo directory and summarize it",
            "arguments": [{
                "name": "path",
                "description": "Path of the file, relative to the demo directory",
                "required": true,
            }],
        }]
    })
}

pub(crate) fn get(params: &Map<String, Value>) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str);
    if name != Some("summarize") {
        return Err(RpcError::invalid_params(match name {
            Some(name) => format!("Invalid params: unknown prompt: {name}"),
            None => "Invalid params: name (a string) is required".to_owned(),
        }));
    }
    let path = match params.get("arguments") {
        None | Some(Value::Null) => None,
        Some(Value::Object(args)) => args.get("path"),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "Invalid params: arguments must be an object",
            ));
        }
    };
    let Some(path) = path.and_then(Value::as_str).filter(|p| !p.is_empty()) else {
        return Err(RpcError::invalid_params(
            "Invalid params: missing required argument: path",
        ));
    };
    let text = format!(
        "Please summarize the file `{path}` from the demo directory. Read it with the read_file \
         tool, then give a short summary of what it contains."
    );
    Ok(json!({
        "description": format!("Summarize {path}"),
        "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn get_checks_name_and_required_argument() {
        let ok = get(&params(
            json!({ "name": "summarize", "arguments": { "path": "a.txt" } }),
        ));
        let ok = ok.unwrap();
        assert_eq!(ok["messages"][0]["role"], "user");
        assert!(
            ok["messages"][0]["content"]["text"]
                .as_str()
                .unwrap()
                .contains("a.txt")
        );
        for bad in [
            json!({ "name": "nope", "arguments": { "path": "a" } }),
            json!({ "arguments": { "path": "a" } }),
            json!({ "name": "summarize" }),
            json!({ "name": "summarize", "arguments": { "path": 3 } }),
            json!({ "name": "summarize", "arguments": [] }),
        ] {
            assert_eq!(get(&params(bad.clone())).unwrap_err().code, -32602, "{bad}");
        }
    }
}

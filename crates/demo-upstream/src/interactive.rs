//! Tools that talk back while they run: `slow` (progress, cancellation) and `ask_name`
//! (elicitation: a server-to-client request in the legacy era, an `InputRequiredResult` and a
//! retry in the modern era).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::era::{Era, Legacy};
use crate::jsonrpc::{MISSING_CLIENT_CAPABILITY, RpcError};
use crate::server::Ctx;
use crate::tools::{Args, error_result, text_result};

pub(crate) const MAX_SLOW_SECONDS: u64 = 60;
pub(crate) const MAX_SLOW_STEPS: u64 = 100;

const ASK: &str = "What is your name?";
/// Echoed back by the client on the retry. Tampering can only make the retry fail, so the
/// state needs no integrity protection (MRTR's rule for state that grants nothing).
const REQUEST_STATE: &str = "ask_name/v1";
const INPUT_KEY: &str = "name";

/// Sleeps `seconds` in `steps`, sending `notifications/progress` after each step when the
/// request carried a progress token. Dropping the future (cancellation) stops it at once.
pub(crate) async fn slow(
    args: &Args<'_>,
    params: &Map<String, Value>,
    ctx: &Ctx,
) -> Result<Value, String> {
    let seconds = args.number("seconds")?.as_f64().unwrap_or(f64::NAN);
    if !(0.0..=MAX_SLOW_SECONDS as f64).contains(&seconds) {
        return Err(format!("seconds must be from 0 to {MAX_SLOW_SECONDS}"));
    }
    let default_steps = (seconds.ceil() as u64).max(1);
    let steps = args
        .opt_u64("steps", 1, MAX_SLOW_STEPS)?
        .unwrap_or(default_steps);
    let token = params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64());
    let step = Duration::from_secs_f64(seconds / steps as f64);
    for i in 1..=steps {
        tokio::time::sleep(step).await;
        if let Some(token) = token {
            let progress = json!({
                "progressToken": token,
                "progress": i,
                "total": steps,
                "message": format!("step {i} of {steps}"),
            });
            ctx.peer.notify("notifications/progress", progress).await;
        }
    }
    Ok(text_result(format!(
        "Waited {seconds} seconds in {steps} steps"
    )))
}

fn requested_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "name": { "type": "string", "title": "Name", "description": "Your name" } },
        "required": ["name"],
    })
}

/// Turns the client's `ElicitResult` into the tool's answer.
fn greet(answer: &Value) -> Value {
    match answer.get("action").and_then(Value::as_str) {
        Some("accept") => match answer
            .get("content")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::trim)
        {
            Some(name) if !name.is_empty() => text_result(format!("Hello, {name}")),
            _ => error_result("The answer did not include a name"),
        },
        Some(action @ ("decline" | "cancel")) => {
            text_result(format!("No name given (the user chose to {action})"))
        }
        _ => error_result("The elicitation answer was not understood"),
    }
}

pub(crate) async fn ask_name(params: &Map<String, Value>, ctx: &Ctx) -> Result<Value, RpcError> {
    match ctx.era {
        Era::Legacy(version) => {
            if !ctx.caps.elicitation_form {
                return Ok(error_result(
                    "Elicitation is unavailable: the client did not declare the elicitation capability",
                ));
            }
            let mut request = json!({ "message": ASK, "requestedSchema": requested_schema() });
            if version == Legacy::V2025_11_25 {
                request["mode"] = Value::from("form");
            }
            Ok(
                match ctx.peer.request("elicitation/create", request).await {
                    Ok(answer) => greet(&answer),
                    Err(e) => error_result(format!("Elicitation failed: {e}")),
                },
            )
        }
        Era::Modern => {
            if !ctx.caps.elicitation_form {
                return Err(RpcError::new(
                    MISSING_CLIENT_CAPABILITY,
                    "Elicitation is unavailable: ask_name requires the elicitation capability",
                )
                .with_data(json!({ "requiredCapabilities": { "elicitation": { "form": {} } } })));
            }
            match params.get("requestState") {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s == REQUEST_STATE => {}
                Some(_) => {
                    return Err(RpcError::invalid_params(
                        "Invalid params: unknown requestState",
                    ));
                }
            }
            let answer = match params.get("inputResponses") {
                None | Some(Value::Null) => None,
                Some(Value::Object(responses)) => responses.get(INPUT_KEY),
                Some(_) => {
                    return Err(RpcError::invalid_params(
                        "Invalid params: inputResponses must be an object",
                    ));
                }
            };
            Ok(match answer {
                Some(answer) => greet(answer),
                None => input_required(),
            })
        }
    }
}

fn input_required() -> Value {
    json!({
        "resultType": "input_required",
        "inputRequests": {
            INPUT_KEY: {
                "method": "elicitation/create",
                "params": { "mode": "form", "message": ASK, "requestedSchema": requested_schema() },
            }
        },
        "requestState": REQUEST_STATE,
    })
}

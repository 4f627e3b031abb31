//! A call's JSON arguments as Cedar values (`context.args`).
//!
//! Cedar has no null, no floats and 64-bit integers only, so the mapping is fixed and total (it
//! never fails and never panics):
//!
//! | JSON | Cedar |
//! |---|---|
//! | object | record (any key; `context.args["a key"]` reaches odd names) |
//! | `null` member of an object or element of an array | left out (`has` is false) |
//! | array | set: order and duplicates are lost |
//! | string, `true`/`false` | string, bool |
//! | integer in i64 range, or a float with no fractional part in that range | `Long` |
//! | other number with at most 4 decimal places in the `decimal` range | `decimal("…")` |
//! | any other number (huge integers, `1e-7`, more decimals) | string of its JSON text |
//! | deeper than [`MAX_DEPTH`] | string of the nested value's JSON text |
//!
//! A type mismatch in a policy (comparing a string with a number) is an evaluation error; errors
//! never turn into an allow (see [`crate::decide`]).

use cedar_policy::RestrictedExpression;
use serde_json::{Number, Value};

/// Nesting (objects and arrays) converted structurally; anything deeper becomes its JSON text.
pub const MAX_DEPTH: usize = 32;

/// The arguments were not a JSON object (MCP arguments always are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("arguments must be a JSON object, not {0}")]
pub struct NotAnObject(pub &'static str);

/// `context.args` for a call: an object as a record; absent or `null` as an empty record.
pub fn args_record(args: Option<&Value>) -> Result<RestrictedExpression, NotAnObject> {
    check_object(args)?;
    Ok(args
        .filter(|v| v.is_object())
        .map_or_else(empty_record, to_cedar))
}

/// What [`args_record`] refuses, without converting anything.
pub fn check_object(args: Option<&Value>) -> Result<(), NotAnObject> {
    match args {
        None | Some(Value::Null | Value::Object(_)) => Ok(()),
        Some(Value::Array(_)) => Err(NotAnObject("an array")),
        Some(Value::String(_)) => Err(NotAnObject("a string")),
        Some(Value::Number(_)) => Err(NotAnObject("a number")),
        Some(Value::Bool(_)) => Err(NotAnObject("a boolean")),
    }
}

/// Any JSON value as a Cedar value (a top-level `null` becomes an empty record).
pub fn to_cedar(value: &Value) -> RestrictedExpression {
    convert(value, 0).unwrap_or_else(empty_record)
}

fn empty_record() -> RestrictedExpression {
    RestrictedExpression::new_record(std::iter::empty::<(String, RestrictedExpression)>())
        .unwrap_or_else(|_| RestrictedExpression::new_string(String::new()))
}

/// `None` for `null` (left out by the caller).
fn convert(value: &Value, depth: usize) -> Option<RestrictedExpression> {
    if depth >= MAX_DEPTH && matches!(value, Value::Object(_) | Value::Array(_)) {
        return Some(RestrictedExpression::new_string(value.to_string()));
    }
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Number(n) => number(n),
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .filter_map(|item| convert(item, depth + 1))
                .collect::<Vec<_>>(),
        ),
        Value::Object(map) => {
            let fields = map
                .iter()
                .filter_map(|(k, v)| convert(v, depth + 1).map(|v| (k.clone(), v)))
                .collect::<Vec<_>>();
            // Keys of a JSON object are unique, so this cannot fail; the fallback keeps the
            // function total anyway.
            RestrictedExpression::new_record(fields)
                .unwrap_or_else(|_| RestrictedExpression::new_string(value.to_string()))
        }
    })
}

/// 2^63 as f64: floats in [-2^63, 2^63) with no fraction convert to i64 exactly.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

fn number(n: &Number) -> RestrictedExpression {
    if let Some(i) = n.as_i64() {
        return RestrictedExpression::new_long(i);
    }
    if n.is_f64()
        && let Some(f) = n.as_f64()
        && f.fract() == 0.0
        && (-TWO_POW_63..TWO_POW_63).contains(&f)
    {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "integral and in range, checked above"
        )]
        return RestrictedExpression::new_long(f as i64);
    }
    let text = n.to_string();
    match decimal_text(&text) {
        Some(d) => RestrictedExpression::new_decimal(d),
        None => RestrictedExpression::new_string(text),
    }
}

/// `text` as a Cedar decimal literal when it is plain (no exponent), has at most four
/// significant decimal places and fits the decimal range (i64 ten-thousandths).
fn decimal_text(text: &str) -> Option<String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || frac.len() > 4 {
        return None;
    }
    let int_value: i128 = int.parse().ok()?;
    let frac_value: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<4}").parse().ok()?
    };
    let scaled = int_value.checked_mul(10_000)?.checked_add(frac_value)?;
    let fits = if negative {
        scaled <= i128::from(i64::MAX) + 1
    } else {
        scaled <= i128::from(i64::MAX)
    };
    if !fits {
        return None;
    }
    let sign = if negative { "-" } else { "" };
    let frac = if frac.is_empty() { "0" } else { frac };
    Some(format!("{sign}{int}.{frac}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::{Context, Entities, EntityUid, PolicySet, Request};
    use proptest::prelude::*;
    use serde_json::json;

    /// Evaluates `expr` (a Cedar expression over `context.args`) for `args`.
    fn holds(args: &Value, expr: &str) -> bool {
        let ctx =
            Context::from_pairs([("args".to_owned(), args_record(Some(args)).unwrap())]).unwrap();
        let uid = |s: &str| s.parse::<EntityUid>().unwrap();
        let req = Request::new(
            uid(r#"P::"p""#),
            uid(r#"A::"a""#),
            uid(r#"R::"r""#),
            ctx,
            None,
        )
        .unwrap();
        let policies: PolicySet = format!("permit(principal, action, resource) when {{ {expr} }};")
            .parse()
            .unwrap();
        let r = cedar_policy::Authorizer::new().is_authorized(&req, &policies, &Entities::empty());
        r.decision() == cedar_policy::Decision::Allow
    }

    #[test]
    fn conversion_table() {
        let args = json!({
            "path": "/srv/data/x",
            "readonly": true,
            "limit": 10,
            "ratio": 2.5,
            "whole": 3.0,
            "tiny": 1e-7,
            "many": 0.123456,
            "huge": 18446744073709551615u64,
            "gone": null,
            "tags": ["a", "b", "a", null],
            "nested": {"deep": {"k": "v"}},
            "odd key": 1
        });
        let rows = [
            (r#"context.args.path like "/srv/data/*""#, true),
            ("context.args.readonly == true", true),
            ("context.args.limit < 11", true),
            (r#"context.args.ratio == decimal("2.5")"#, true),
            (r#"context.args.ratio.lessThan(decimal("3.0"))"#, true),
            ("context.args.whole == 3", true),
            (r#"context.args.tiny == "1e-7""#, true),
            (r#"context.args.many == "0.123456""#, true),
            (r#"context.args.huge == "18446744073709551615""#, true),
            ("context.args has gone", false),
            (r#"context.args.tags == ["b", "a"]"#, true),
            (r#"context.args.nested.deep.k == "v""#, true),
            (r#"context.args["odd key"] == 1"#, true),
            ("context.args has missing", false),
        ];
        for (expr, want) in rows {
            assert_eq!(holds(&args, expr), want, "{expr}");
        }
    }

    #[test]
    fn decimal_rules() {
        let rows = [
            ("2.5", Some("2.5")),
            ("-0.25", Some("-0.25")),
            ("1.0000", Some("1.0")),
            ("0.12345", None),
            ("1e-7", None),
            ("922337203685477.5807", Some("922337203685477.5807")),
            ("922337203685477.5808", None),
            ("-922337203685477.5808", Some("-922337203685477.5808")),
            ("1e300", None),
        ];
        for (text, want) in rows {
            assert_eq!(decimal_text(text).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn top_level_shapes() {
        assert!(args_record(None).is_ok());
        assert!(args_record(Some(&Value::Null)).is_ok());
        assert_eq!(
            args_record(Some(&json!([1]))).err(),
            Some(NotAnObject("an array"))
        );
        assert_eq!(
            args_record(Some(&json!("x"))).err(),
            Some(NotAnObject("a string"))
        );
    }

    #[test]
    fn deep_nesting_becomes_text() {
        let mut v = json!("leaf");
        for _ in 0..(MAX_DEPTH + 5) {
            v = json!({ "a": v });
        }
        let ctx = Context::from_pairs([("args".to_owned(), args_record(Some(&v)).unwrap())]);
        assert!(ctx.is_ok());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(40, 256, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_converts_into_a_context(v in json_value()) {
            let args = json!({ "v": v });
            let expr = args_record(Some(&args)).unwrap();
            // Building the context evaluates every value (decimal literals included).
            let ctx = Context::from_pairs([("args".to_owned(), expr)]);
            prop_assert!(ctx.is_ok(), "{ctx:?}");
            let _ = to_cedar(&v);
        }
    }
}

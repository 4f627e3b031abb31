use portcullis_config::{RedactPattern, RedactSet};
use serde_json::Value;

use super::*;

const CORPUS: &str = include_str!("../../../../tests/corpus/guard/redaction.json");

fn all_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| all_strings(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            all_strings(v, out);
        }),
        _ => {}
    }
}

fn sets(case: &Value) -> Vec<RedactSet> {
    case["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s.as_str().unwrap() {
            "secrets" => RedactSet::Secrets,
            "pii" => RedactSet::Pii,
            other => panic!("unknown set {other}"),
        })
        .collect()
}

fn patterns(case: &Value) -> Vec<RedactPattern> {
    case.get("patterns")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| RedactPattern {
                    name: p["name"].as_str().unwrap().to_owned(),
                    pattern: p["pattern"].as_str().unwrap().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every secret and personal datum of the corpus is gone after redaction, wherever it sat in the
/// result, and each case reports the rules it expects.
#[test]
fn corpus_nothing_survives() {
    let corpus: Value = serde_json::from_str(CORPUS).unwrap();
    for case in corpus["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let redactor = Redactor::new(&sets(case), &patterns(case)).unwrap();
        let mut value = case["input"].clone();
        let keys_before = {
            let mut v = Vec::new();
            all_strings(&case["input"], &mut v);
            v.len()
        };
        let report = redactor.redact_json(&mut value);
        let mut strings = Vec::new();
        all_strings(&value, &mut strings);
        assert_eq!(strings.len(), keys_before, "{name}: shape changed");
        let text = strings.join("\n");
        for secret in case["must_not_survive"].as_array().unwrap() {
            let secret = secret.as_str().unwrap();
            assert!(
                !text.contains(secret),
                "{name}: {secret:?} survived in:\n{text}"
            );
        }
        for marker in case["markers"].as_array().unwrap() {
            let marker = marker.as_str().unwrap();
            assert!(
                report.rules.contains_key(marker),
                "{name}: no {marker} in {report:?}\n{text}"
            );
            assert!(
                text.contains(&format!("[REDACTED:{marker}]")),
                "{name}: {marker}"
            );
        }
        assert_eq!(report.count, report.rules.values().sum::<usize>());
        if let Some(want) = case.get("expect_text") {
            assert_eq!(value["content"][0]["text"], *want, "{name}");
        }
    }
}

/// Ordinary text, identifiers, hashes and numbers pass untouched (and unallocated) with every
/// built-in set enabled.
#[test]
fn corpus_no_false_positives() {
    let corpus: Value = serde_json::from_str(CORPUS).unwrap();
    let redactor = Redactor::new(&[RedactSet::Secrets, RedactSet::Pii], &[]).unwrap();
    for text in corpus["clean"].as_array().unwrap() {
        let text = text.as_str().unwrap();
        let out = redactor.redact_str(text);
        assert!(
            matches!(out, Cow::Borrowed(_)),
            "false positive: {text:?} → {out:?}"
        );
    }
}

#[test]
fn keys_are_kept_and_only_the_secret_part_is_replaced() {
    let redactor = Redactor::new(&[RedactSet::Secrets], &[]).unwrap();
    let mut v = serde_json::json!({"ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa": "x", "url": "https://u:S3cr3tPassw0rd@example.com/x"});
    let report = redactor.redact_json(&mut v);
    assert!(v.get("ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_some());
    assert_eq!(
        v["url"],
        "https://u:[REDACTED:password_in_url]@example.com/x"
    );
    assert_eq!(report.count, 1);
}

#[test]
fn empty_redactor_changes_nothing() {
    let redactor = Redactor::new(&[], &[]).unwrap();
    assert!(redactor.is_empty());
    assert!(matches!(
        redactor.redact_str("ghp_0123456789abcdefghijABCDEFGHIJ012345"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn invalid_operator_pattern_is_a_typed_error() {
    let err = Redactor::new(
        &[],
        &[RedactPattern {
            name: "bad".into(),
            pattern: "(".into(),
        }],
    )
    .unwrap_err();
    assert_eq!(err.rule, "bad");
}

#[test]
fn every_builtin_rule_compiles_and_has_a_snake_case_marker() {
    let redactor = Redactor::new(&[RedactSet::Secrets, RedactSet::Pii], &[]).unwrap();
    assert!(redactor.rules.len() > 60);
    for rule in &redactor.rules {
        assert!(
            rule.marker
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{}",
            rule.marker
        );
    }
}

#[test]
fn entropy_measure() {
    assert!(shannon("aaaaaaaa") < 0.01);
    assert!((shannon("abcd") - 2.0).abs() < 1e-9);
    assert!(shannon("JRBRY6HqsP795nf4Gakq5p1Vm8kV6um4") > 3.5);
}

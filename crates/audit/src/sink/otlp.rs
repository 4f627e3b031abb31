//! The OTLP sink: each batch as one OTLP/HTTP logs export (protobuf,
//! `POST {endpoint}/v1/logs`), built with the OpenTelemetry project's generated OTLP types
//! (`opentelemetry-proto`) rather than the SDK's log pipeline, because the cursor must know
//! whether each batch was accepted.
//!
//! One log record per audit record: `time_unix_nano` from `ts`, severity by decision, the body
//! the record's JSON line (the stored form), and one attribute per field
//! (`portcullis.audit.seq`, `portcullis.audit.decision`, …) for querying.

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use portcullis_config::Secret;
use prost::Message;

use super::SinkError;
use super::http::{HttpPoster, post_error};
use crate::clock;
use crate::record::{Decision, Record};
use crate::report::is_anomaly;

/// Prefix of the attribute keys.
pub const ATTRIBUTE_PREFIX: &str = "portcullis.audit.";

/// `endpoint` as an OTLP/HTTP logs URL: unchanged when it already ends in `/v1/logs`, else
/// with `/v1/logs` appended (the OTLP exporter convention for a base endpoint).
pub fn logs_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.ends_with("/v1/logs") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/logs")
    }
}

/// OTLP severity for a record: anomalies WARN4, deny and rejected WARN, error ERROR, approved
/// INFO2, allow INFO.
pub fn severity(record: &Record) -> (SeverityNumber, &'static str) {
    if is_anomaly(record) {
        return (SeverityNumber::Warn4, "WARN4");
    }
    match record.decision {
        Decision::Allow => (SeverityNumber::Info, "INFO"),
        Decision::Approved => (SeverityNumber::Info2, "INFO2"),
        Decision::Deny | Decision::Rejected => (SeverityNumber::Warn, "WARN"),
        Decision::Error => (SeverityNumber::Error, "ERROR"),
    }
}

fn key_value(key: String, value: Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    key_value(
        format!("{ATTRIBUTE_PREFIX}{key}"),
        Value::StringValue(value.to_owned()),
    )
}

fn int(key: &str, value: u64) -> KeyValue {
    key_value(
        format!("{ATTRIBUTE_PREFIX}{key}"),
        Value::IntValue(i64::try_from(value).unwrap_or(i64::MAX)),
    )
}

/// The OTLP log record for one audit record.
pub fn log_record(record: &Record, observed_ms: i64) -> LogRecord {
    let nanos = |ms: i64| u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000);
    let (number, text) = severity(record);
    let mut attributes = vec![
        int("seq", record.seq),
        string("request_id", &record.request_id),
        string("method", &record.method),
        string("decision", record.decision.as_str()),
        int("latency_ms", record.latency_ms),
        string("hash", &record.hash),
        string("prev_hash", &record.prev_hash),
    ];
    let optional = [
        ("principal", record.principal.as_deref()),
        ("auth_method", record.auth_method.as_deref()),
        ("client_ip", record.client_ip.as_deref()),
        ("upstream", record.upstream.as_deref()),
        ("name", record.name.as_deref()),
        ("reason", record.reason.as_deref()),
        ("args_digest", record.args_digest.as_deref()),
        ("result_digest", record.result_digest.as_deref()),
    ];
    attributes.extend(
        optional
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| string(key, v))),
    );
    if !record.policy_ids.is_empty() {
        attributes.push(string("policy_ids", &record.policy_ids.join(",")));
    }
    if let Some(status) = record.status {
        attributes.push(int("status", u64::from(status)));
    }
    LogRecord {
        time_unix_nano: clock::parse_ms(&record.ts).map_or(0, nanos),
        observed_time_unix_nano: nanos(observed_ms),
        severity_number: number as i32,
        severity_text: text.to_owned(),
        body: Some(AnyValue {
            value: Some(Value::StringValue(record.to_json_line())),
        }),
        attributes,
        event_name: "portcullis.audit.record".to_owned(),
        ..LogRecord::default()
    }
}

/// The export request for a batch: one resource (`service.name = portcullis`), one scope.
pub fn export_request(batch: &[Record], observed_ms: i64) -> ExportLogsServiceRequest {
    let resource = Resource {
        attributes: vec![key_value(
            "service.name".to_owned(),
            Value::StringValue("portcullis".to_owned()),
        )],
        ..Resource::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "portcullis.audit".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                log_records: batch.iter().map(|r| log_record(r, observed_ms)).collect(),
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// Posts batches to one collector.
#[derive(Debug)]
pub struct OtlpSink {
    poster: HttpPoster,
}

impl OtlpSink {
    pub fn new(
        endpoint: &str,
        headers: &[(String, Secret)],
        timeout: Duration,
    ) -> Result<OtlpSink, SinkError> {
        Ok(OtlpSink {
            poster: HttpPoster::new(&logs_url(endpoint), headers, timeout)?,
        })
    }

    pub async fn deliver(&self, batch: &[Record]) -> Result<(), SinkError> {
        let body = export_request(batch, portcullis_store::now_ms()).encode_to_vec();
        let response = self
            .poster
            .post(body, "application/x-protobuf")
            .await
            .map_err(post_error)?;
        // A full success may have an empty body; a partial one names what was rejected. The
        // records are still in the store, so a rejection is logged, not retried forever.
        if let Ok(answer) = ExportLogsServiceResponse::decode(response.as_slice())
            && let Some(partial) = answer.partial_success
            && partial.rejected_log_records > 0
        {
            tracing::warn!(
                rejected = partial.rejected_log_records,
                message = %partial.error_message,
                "the OTLP collector rejected part of an audit batch"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::logs_url;

    #[test]
    fn endpoint_to_logs_url() {
        let rows = [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/logs"),
            ("http://127.0.0.1:4318/", "http://127.0.0.1:4318/v1/logs"),
            ("https://otel/v1/logs", "https://otel/v1/logs"),
            ("https://otel/prefix", "https://otel/prefix/v1/logs"),
        ];
        for (endpoint, want) in rows {
            assert_eq!(logs_url(endpoint), want);
        }
    }
}

//! The HTTP sinks against receivers in the test: an OTLP/HTTP collector stand-in that decodes
//! the protobuf export, and a webhook that refuses connections, then answers 503, then
//! recovers, on SQLite and on PostgreSQL.

#[cfg(test)]
#[path = "sink_support/mod.rs"]
mod support;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use crate::support::{append, fast, open_log, wait_for};
    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    use opentelemetry_proto::tonic::collector::logs::v1::{
        ExportLogsServiceRequest, ExportLogsServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use portcullis_audit::Record;
    use portcullis_audit::sink::{SinkSet, SinkSpec};
    use portcullis_config::Secret;
    use portcullis_store::{Store, testing};
    use prost::Message;
    use tokio_util::sync::CancellationToken;

    const SECRET: &str = "sk-live-http-91f3aa";
    const HOOK_TOKEN: &str = "Bearer hook-token-5c2e";

    async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    }

    #[derive(Default)]
    struct Collector {
        /// seq → (severity text, body) per log record received.
        records: Mutex<BTreeMap<u64, Vec<(String, String)>>>,
        bad_requests: Mutex<Vec<String>>,
    }

    async fn collect(
        State(c): State<Arc<Collector>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, Vec<u8>) {
        if headers.get("content-type").and_then(|v| v.to_str().ok())
            != Some("application/x-protobuf")
        {
            c.bad_requests
                .lock()
                .unwrap()
                .push(format!("content-type {:?}", headers.get("content-type")));
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
        }
        let request = match ExportLogsServiceRequest::decode(body.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                c.bad_requests.lock().unwrap().push(e.to_string());
                return (StatusCode::BAD_REQUEST, Vec::new());
            }
        };
        for resource in request.resource_logs {
            let service = resource
                .resource
                .unwrap()
                .attributes
                .into_iter()
                .find(|a| a.key == "service.name");
            assert!(
                matches!(service.and_then(|a| a.value).and_then(|v| v.value), Some(Value::StringValue(s)) if s == "portcullis")
            );
            for scope in resource.scope_logs {
                for log in scope.log_records {
                    let seq = log
                        .attributes
                        .iter()
                        .find(|a| a.key == "portcullis.audit.seq")
                        .and_then(|a| a.value.clone())
                        .and_then(|v| v.value);
                    let Some(Value::IntValue(seq)) = seq else {
                        c.bad_requests
                            .lock()
                            .unwrap()
                            .push("log record without seq".into());
                        continue;
                    };
                    let Some(Value::StringValue(body)) = log.body.and_then(|b| b.value) else {
                        c.bad_requests
                            .lock()
                            .unwrap()
                            .push("log record without a string body".into());
                        continue;
                    };
                    assert!(log.time_unix_nano > 1_700_000_000_000_000_000);
                    c.records
                        .lock()
                        .unwrap()
                        .entry(seq as u64)
                        .or_default()
                        .push((log.severity_text, body));
                }
            }
        }
        (
            StatusCode::OK,
            ExportLogsServiceResponse::default().encode_to_vec(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn otlp_collector_receives_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;
        let collector = Arc::new(Collector::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        serve(
            listener,
            axum::Router::new()
                .route("/v1/logs", post(collect))
                .with_state(Arc::clone(&collector)),
        )
        .await;

        let shutdown = CancellationToken::new();
        let mut sinks = SinkSet::spawn(
            store.clone(),
            vec![SinkSpec::Otlp {
                endpoint,
                headers: Vec::new(),
            }],
            fast(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        sinks.follow(log.committed());
        append(&log, 0, 250, SECRET).await;
        wait_for(Duration::from_secs(15), "250 OTLP log records", || {
            collector.records.lock().unwrap().len() == 250
        })
        .await;
        assert!(
            collector.bad_requests.lock().unwrap().is_empty(),
            "{:?}",
            collector.bad_requests.lock().unwrap()
        );

        let stored = portcullis_audit::records_after(&store, 0, 1000)
            .await
            .unwrap();
        let received = collector.records.lock().unwrap().clone();
        assert_eq!(
            received
                .keys()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            expected(250)
        );
        for record in &stored {
            let copies = &received[&record.seq];
            assert_eq!(
                copies.len(),
                1,
                "seq {} delivered {} times",
                record.seq,
                copies.len()
            );
            // The body is the stored record, field for field.
            assert_eq!(copies[0].1, record.to_json_line());
            assert!(!copies[0].1.contains(SECRET));
            let want = match record.decision {
                portcullis_audit::Decision::Allow => "INFO",
                portcullis_audit::Decision::Approved => "INFO2",
                portcullis_audit::Decision::Deny | portcullis_audit::Decision::Rejected => "WARN",
                portcullis_audit::Decision::Error => "ERROR",
            };
            assert_eq!(copies[0].0, want);
        }
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    struct Hook {
        up: AtomicBool,
        received: Mutex<Vec<Record>>,
        refused: Mutex<u32>,
        unauthorized: Mutex<u32>,
    }

    async fn hook(State(h): State<Arc<Hook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(HOOK_TOKEN) {
            *h.unauthorized.lock().unwrap() += 1;
            return StatusCode::UNAUTHORIZED;
        }
        if !h.up.load(Ordering::SeqCst) {
            *h.refused.lock().unwrap() += 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let batch: Vec<Record> = serde_json::from_slice(&body).unwrap();
        h.received.lock().unwrap().extend(batch);
        StatusCode::NO_CONTENT
    }

    /// A free port on 127.0.0.1 with nothing listening on it (yet).
    fn free_port() -> SocketAddr {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    }

    async fn webhook_catches_up_after_an_outage(store: Store, dir: &std::path::Path) {
        let log = open_log(&store, dir).await;
        let address = free_port();
        let options = fast();
        let shutdown = CancellationToken::new();
        let mut sinks = SinkSet::spawn(
            store.clone(),
            vec![SinkSpec::Webhook {
                url: format!("http://{address}/hook?tenant=t1"),
                headers: vec![(
                    "Authorization".to_owned(),
                    Secret::new("env:HOOK_TOKEN", HOOK_TOKEN),
                )],
            }],
            options.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        sinks.follow(log.committed());

        // 1. Nothing listens: connections are refused. Requests are not slowed down.
        let started = Instant::now();
        append(&log, 0, 100, SECRET).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "appends waited for the sink"
        );
        wait_for(Duration::from_secs(10), "failed deliveries", || {
            sinks.status()[0].failures >= 3
        })
        .await;
        // Long enough for the backoff to reach its cap.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let status = &sinks.status()[0];
        assert_eq!((status.delivered_seq, status.lag), (0, 100), "{status:?}");
        assert!(status.last_error.is_some());
        assert!(
            !status.last_error.as_deref().unwrap().contains("tenant"),
            "the URL leaked into an error: {status:?}"
        );

        // 2. The receiver is back but answers 503.
        let state = Arc::new(Hook {
            up: AtomicBool::new(false),
            received: Mutex::default(),
            refused: Mutex::default(),
            unauthorized: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        serve(
            listener,
            axum::Router::new()
                .route("/hook", post(hook))
                .with_state(Arc::clone(&state)),
        )
        .await;
        append(&log, 100, 200, SECRET).await;
        wait_for(Duration::from_secs(10), "503 answers", || {
            *state.refused.lock().unwrap() >= 3
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(state.received.lock().unwrap().is_empty());
        assert_eq!(sinks.status()[0].lag, 200);

        // 3. It recovers: everything arrives, in order, once; within the backoff cap.
        state.up.store(true, Ordering::SeqCst);
        let recovered = Instant::now();
        wait_for(
            Duration::from_secs(15),
            "200 records at the webhook",
            || state.received.lock().unwrap().len() >= 200,
        )
        .await;
        assert!(
            recovered.elapsed() < options.backoff_max + Duration::from_secs(3),
            "caught up only after {:?}",
            recovered.elapsed()
        );
        let seqs: Vec<u64> = state
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=200).collect::<Vec<_>>(),
            "every record exactly once, in order"
        );
        let stored = portcullis_audit::records_after(&store, 0, 1000)
            .await
            .unwrap();
        assert_eq!(*state.received.lock().unwrap(), stored);
        assert_eq!(*state.unauthorized.lock().unwrap(), 0);
        wait_for(Duration::from_secs(5), "lag 0", || {
            sinks.status()[0].lag == 0
        })
        .await;
        let status = &sinks.status()[0];
        assert_eq!(
            (status.delivered_seq, status.delivered, status.gaps),
            (200, 200, 0)
        );
        assert!(status.last_error.is_none());

        // The cursor is durable: a new set (a restart) delivers only what is new.
        shutdown.cancel();
        sinks.join().await;
        let spec_id = SinkSpec::Webhook {
            url: format!("http://{address}/hook?tenant=t1"),
            headers: Vec::new(),
        }
        .id();
        assert_eq!(
            portcullis_audit::sink::read_cursor(&store, &spec_id)
                .await
                .unwrap(),
            200
        );
        append(&log, 200, 230, SECRET).await;
        let shutdown = CancellationToken::new();
        let sinks = SinkSet::spawn(
            store.clone(),
            vec![SinkSpec::Webhook {
                url: format!("http://{address}/hook?tenant=t1"),
                headers: vec![(
                    "Authorization".to_owned(),
                    Secret::new("env:HOOK_TOKEN", HOOK_TOKEN),
                )],
            }],
            options,
            shutdown.clone(),
        )
        .await
        .unwrap();
        wait_for(Duration::from_secs(10), "230 records", || {
            state.received.lock().unwrap().len() >= 230
        })
        .await;
        let seqs: Vec<u64> = state
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, (1..=230).collect::<Vec<_>>());
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_outage_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        webhook_catches_up_after_an_outage(store, dir.path()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn webhook_outage_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::postgres().await.unwrap();
        webhook_catches_up_after_an_outage(store, dir.path()).await;
    }

    fn expected(n: u64) -> std::collections::BTreeSet<u64> {
        (1..=n).collect()
    }
}

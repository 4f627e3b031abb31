//! A gateway in process in front of the demo upstream: a catalog used near its age limit is
//! fetched again in the background (the call does not wait for it), and one past the limit is
//! fetched before the call goes on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_gateway::Gateway;
use portcullis_guard::pins::Kind as PinKind;

#[cfg(test)]
async fn gateway(dir: &std::path::Path) -> Arc<Gateway> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let root = dir.join("files");
    std::fs::create_dir_all(&root).unwrap();
    tokio::spawn(portcullis_demo_upstream::serve_http(listener, root));
    let policy = dir.join("allow.cedar");
    std::fs::write(&policy, "permit (principal, action, resource);\n").unwrap();
    let config = format!(
        r#"
[listen]
addr = "127.0.0.1:0"
[storage]
url = "sqlite://{db}"
[auth]
api_keys = true
key_pepper = "{pepper}"
[authz]
policies = ["{policy}"]
[[upstream]]
name = "demo"
url = "http://{addr}/mcp"
"#,
        db = dir.join("store.db").display(),
        pepper = "ab".repeat(32),
        policy = policy.display(),
    );
    let config =
        portcullis_config::from_str(&config, None, &BTreeMap::<String, String>::new()).unwrap();
    Gateway::build(&config).await.unwrap()
}

/// Polls `check` every 20 ms for up to 10 s.
#[cfg(test)]
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_near_its_age_limit_is_refreshed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path()).await;
    let max_age = Duration::from_secs(2);
    gw.catalogs.set_max_age(max_age);
    assert_eq!(gw.catalogs.age(0), None);
    let echo = gw
        .catalogs
        .for_use(&gw, 0, PinKind::Tool, "echo")
        .await
        .unwrap();
    assert!(echo.blocked.is_none());

    // Used early in its life: nothing happens.
    gw.catalogs
        .for_use(&gw, 0, PinKind::Tool, "echo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let age = gw.catalogs.age(0).unwrap();
    assert!(age >= Duration::from_millis(100), "{age:?}");

    // Used in the last quarter of its life: served as it is, and fetched again meanwhile
    // (its age falls back without any further call).
    tokio::time::sleep((max_age * 3 / 4).saturating_sub(age) + Duration::from_millis(50)).await;
    let before = gw.catalogs.age(0).unwrap();
    assert!(before >= max_age * 3 / 4 && before < max_age, "{before:?}");
    gw.catalogs
        .for_use(&gw, 0, PinKind::Tool, "echo")
        .await
        .unwrap();
    eventually("a background refresh", || {
        gw.catalogs.age(0).unwrap() < before
    })
    .await;

    // Not used until past its life: the next call fetches it first.
    tokio::time::sleep(max_age + Duration::from_millis(100)).await;
    assert!(gw.catalogs.age(0).unwrap() > max_age);
    gw.catalogs
        .for_use(&gw, 0, PinKind::Tool, "echo")
        .await
        .unwrap();
    assert!(gw.catalogs.age(0).unwrap() < max_age / 2);
    gw.stop().await;
}

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_mcp::{Notification, Outcome};
use portcullis_transport::upstream::ServerIdentity;
use portcullis_transport::{Call, Health, Upstream, UpstreamError};
use tokio::sync::broadcast;

use super::*;

struct Nothing;

#[async_trait]
impl Upstream for Nothing {
    fn name(&self) -> &str {
        "nothing"
    }
    fn health(&self) -> Health {
        Health::Up
    }
    fn identity(&self) -> Option<ServerIdentity> {
        None
    }
    async fn call(&self, _: Call) -> Result<Outcome, UpstreamError> {
        Err(UpstreamError::Unavailable("test".into()))
    }
    async fn notify(&self, _: Notification) -> Result<(), UpstreamError> {
        Ok(())
    }
    fn notifications(&self) -> broadcast::Receiver<Notification> {
        broadcast::channel(1).1
    }
    async fn shutdown(&self) {}
}

fn fed(prefixes: &[(&str, &str)]) -> Federation {
    Federation::new(
        prefixes
            .iter()
            .map(|(n, p)| Member {
                name: (*n).into(),
                prefix: (*p).into(),
                upstream: Arc::new(Nothing),
            })
            .collect(),
    )
}

#[test]
fn routing_table() {
    let f = fed(&[("fs", "fs__"), ("fs2", "fs__x__"), ("search", "search__")]);
    type Row<'a> = (&'a str, Result<(usize, &'a str), &'a str>);
    let rows: &[Row<'_>] = &[
        ("fs__read_file", Ok((0, "read_file"))),
        ("fs__x__read", Ok((1, "read"))),
        ("search__query", Ok((2, "query"))),
        ("fs__", Err("unknown")),
        ("other", Err("unknown")),
        ("", Err("unknown")),
    ];
    for (name, want) in rows {
        let got = f.route(Kind::Tool, name);
        match (got, want) {
            (Ok((i, inner)), Ok((wi, winner))) => {
                assert_eq!((i, inner.as_str()), (*wi, *winner), "{name}")
            }
            (Err(GatewayError::UnknownTarget(_)), Err("unknown")) => {}
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn single_unprefixed_upstream_takes_the_rest() {
    let f = fed(&[("fs", "fs__"), ("conf", "")]);
    assert_eq!(f.route(Kind::Tool, "echo").unwrap(), (1, "echo".into()));
    assert_eq!(f.route(Kind::Tool, "fs__echo").unwrap(), (0, "echo".into()));
}

#[test]
fn collisions_hide_both_and_are_reported() {
    let f = fed(&[("a", ""), ("b", "")]);
    assert!(f.record(Kind::Tool, "echo", 0));
    assert!(f.record(Kind::Tool, "only_b", 1));
    assert!(!f.record(Kind::Tool, "echo", 1));
    assert!(
        !f.record(Kind::Tool, "echo", 0),
        "the first owner is hidden too"
    );
    assert!(matches!(
        f.route(Kind::Tool, "echo"),
        Err(GatewayError::Collision(_))
    ));
    assert_eq!(f.route(Kind::Tool, "only_b").unwrap(), (1, "only_b".into()));
    assert!(
        f.record(Kind::Prompt, "echo", 1),
        "kinds are separate namespaces"
    );
}

#[test]
fn cursors_round_trip_and_reject_garbage() {
    let f = fed(&[("a", "a__"), ("b", "b__")]);
    let c = Federation::encode_cursor(1, Some("page2"));
    assert_eq!(
        f.decode_cursor(Some(&c)).unwrap(),
        (1, Some("page2".into()))
    );
    assert_eq!(f.decode_cursor(None).unwrap(), (0, None));
    for bad in ["!!!", "e30", &Federation::encode_cursor(9, None)] {
        assert!(f.decode_cursor(Some(bad)).is_err(), "{bad}");
    }
}

proptest::proptest! {
    #[test]
    fn expose_then_route_is_identity(inner in "[a-z_]{1,20}") {
        let f = fed(&[("fs", "fs__"), ("web", "web__")]);
        for idx in 0..2 {
            let exposed = f.expose(idx, &inner);
            proptest::prop_assert_eq!(f.route(Kind::Tool, &exposed).unwrap(), (idx, inner.clone()));
        }
    }
}

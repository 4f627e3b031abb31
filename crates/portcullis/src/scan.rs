//! `scan` and `pins accept`: fetch every upstream's tools, prompts and resource templates, report
//! poisoning findings and pin changes, or accept the current definitions as the new pins.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use portcullis_config::Config;
use portcullis_guard::pins::{Definition, Kind, PinState, PinStore};
use portcullis_guard::scan::{self, ScanOptions};
use portcullis_transport::upstream::{self, Call, ClientContext, Upstream, UpstreamLimits};
use serde_json::{Value, json};

use crate::run::{EXIT_BAD_CONFIG, load};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum PinsCommand {
    /// Accept the upstreams' current definitions as the new pins.
    Accept {
        /// Only this upstream (default: every upstream).
        #[arg(long)]
        upstream: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Pages fetched per list at most (a hostile upstream could page forever).
const MAX_PAGES: usize = 100;

/// Prints `rows` as a table (`headers` as the header) or as a JSON array of objects keyed by
/// `headers` (the first column is the id other commands take: the upstream).
fn print(headers: &[&str], rows: &[Vec<String>], format: Format, empty: &str) {
    match format {
        Format::Json => {
            let array: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let object = headers
                        .iter()
                        .zip(r)
                        .map(|(h, v)| ((*h).to_owned(), Value::String(v.clone())))
                        .collect();
                    Value::Object(object)
                })
                .collect();
            println!("{}", Value::Array(array));
        }
        Format::Table if rows.is_empty() => println!("{empty}"),
        Format::Table => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED).set_header(headers);
            for r in rows {
                table.add_row(r);
            }
            println!("{table}");
        }
    }
}

/// Lists every definition of one kind, following `nextCursor`. An upstream without the
/// capability (`-32601`) has none.
async fn list(upstream: &dyn Upstream, kind: Kind) -> Result<Vec<Definition>, String> {
    let (method, key) = kind.list_method();
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => Some(
                serde_json::value::to_raw_value(&json!({ "cursor": c }))
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let call = Call {
            method: method.to_owned(),
            params,
            client: ClientContext::default(),
            events: None,
        };
        let outcome = upstream.call(call).await.map_err(|e| e.to_string())?;
        let result: Value = match outcome {
            portcullis_mcp::Outcome::Result(raw) => {
                serde_json::from_str(raw.get()).map_err(|e| format!("{method}: {e}"))?
            }
            portcullis_mcp::Outcome::Error(e) if e.code == -32601 => return Ok(out),
            portcullis_mcp::Outcome::Error(e) => {
                return Err(format!("{method}: error {} {}", e.code, e.message));
            }
        };
        for item in result
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(def) = Definition::new(kind, item.clone()) {
                out.push(def);
            }
        }
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            return Ok(out);
        }
    }
    Err(format!("{method}: more than {MAX_PAGES} pages"))
}

/// Connects to `u` and fetches its tools, prompts and resource templates.
async fn fetch(
    config: &Config,
    u: &portcullis_config::Upstream,
) -> Result<Vec<Definition>, String> {
    let limits = UpstreamLimits {
        max_response_bytes: config.limits.max_response_bytes,
        max_json_depth: config.limits.max_json_depth,
    };
    let conn: Arc<dyn Upstream> = upstream::connect(
        u,
        limits,
        portcullis_gateway::upstream_auth::http_client()
            .ok()
            .and_then(|http| portcullis_gateway::upstream_auth::token_source(u, &http)),
    )
    .map_err(|e| e.to_string())?;
    let deadline = config.limits.call_timeout + Duration::from_secs(30);
    let fetched = tokio::time::timeout(deadline, async {
        let mut defs = Vec::new();
        for kind in [Kind::Tool, Kind::Prompt, Kind::ResourceTemplate] {
            defs.extend(list(conn.as_ref(), kind).await?);
        }
        Ok::<_, String>(defs)
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {}s", deadline.as_secs())));
    conn.shutdown().await;
    fetched
}

async fn open_pins(config: &Config) -> Result<PinStore, String> {
    let store = portcullis_store::Store::open(&config.storage.url)
        .await
        .map_err(|e| e.to_string())?;
    PinStore::open(store).await.map_err(|e| e.to_string())
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// `portcullis scan`: exit 0 clean, 1 findings, changed pins or unreachable upstreams, 2 bad config.
pub async fn scan(config_path: &Path, format: Format) -> ExitCode {
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let pins = match open_pins(&config).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot open the pin store: {e}");
            return ExitCode::from(1);
        }
    };
    let mut fetched = Vec::new();
    for u in &config.upstreams {
        fetched.push((u, fetch(&config, u).await));
    }
    // Every tool name the gateway exposes, plain and prefixed, for cross-tool shadowing.
    let known: Vec<String> = fetched
        .iter()
        .flat_map(|(u, defs)| {
            defs.iter()
                .flatten()
                .filter(|d| d.kind == Kind::Tool)
                .flat_map(|d| [d.name.clone(), format!("{}{}", u.prefix, d.name)])
        })
        .collect();
    let mut rows = Vec::new();
    for (u, defs) in &fetched {
        let defs = match defs {
            Ok(defs) => defs,
            Err(e) => {
                rows.push(vec![
                    u.name.clone(),
                    String::new(),
                    String::new(),
                    "unreachable".into(),
                    "error".into(),
                    String::new(),
                    e.clone(),
                ]);
                continue;
            }
        };
        for f in scan::scan(defs, &known, &ScanOptions::default()) {
            rows.push(vec![
                u.name.clone(),
                f.kind.to_string(),
                f.name,
                f.rule.to_string(),
                f.severity.as_str().into(),
                f.location,
                f.excerpt,
            ]);
        }
        match pins.peek(&u.name, defs).await {
            Ok(statuses) => {
                for s in statuses {
                    if let PinState::Changed {
                        pinned_digest,
                        seen_digest,
                    } = s.state
                    {
                        rows.push(vec![
                            u.name.clone(),
                            s.kind.to_string(),
                            s.name,
                            "pin_changed".into(),
                            "block".into(),
                            String::new(),
                            format!(
                                "pinned {} → now {}; `portcullis pins accept --upstream {}` accepts it",
                                short(&pinned_digest),
                                short(&seen_digest),
                                u.name
                            ),
                        ]);
                    }
                }
            }
            Err(e) => {
                eprintln!("error: pin store: {e}");
                return ExitCode::from(1);
            }
        }
    }
    print(
        &[
            "upstream", "kind", "name", "finding", "severity", "location", "detail",
        ],
        &rows,
        format,
        &format!(
            "clean: {} upstream(s), no findings, no changed pins",
            config.upstreams.len()
        ),
    );
    if rows.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `portcullis pins …`.
pub async fn pins(config_path: &Path, command: PinsCommand) -> ExitCode {
    let PinsCommand::Accept { upstream, format } = command;
    let config = match load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(name) = &upstream
        && !config.upstreams.iter().any(|u| &u.name == name)
    {
        eprintln!(
            "error: no upstream named {name:?} in {}",
            config_path.display()
        );
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    let pins = match open_pins(&config).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot open the pin store: {e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = false;
    let mut rows = Vec::new();
    for u in config
        .upstreams
        .iter()
        .filter(|u| upstream.as_ref().is_none_or(|n| n == &u.name))
    {
        let defs = match fetch(&config, u).await {
            Ok(defs) => defs,
            Err(e) => {
                eprintln!("error: {}: {e}", u.name);
                failed = true;
                continue;
            }
        };
        // Record what is listed now, then make it the pin.
        let accepted = match pins.compare(&u.name, &defs).await {
            Ok(_) => pins.accept(Some(&u.name)).await,
            Err(e) => Err(e),
        };
        match accepted {
            Ok(accepted) => {
                for a in accepted {
                    let digest = |d: &str| match format {
                        Format::Table => short(d).to_owned(),
                        Format::Json => d.to_owned(),
                    };
                    rows.push(vec![
                        a.upstream,
                        a.kind.to_string(),
                        a.name,
                        digest(&a.previous_digest),
                        digest(&a.digest),
                    ]);
                }
            }
            Err(e) => {
                eprintln!("error: pin store: {e}");
                return ExitCode::from(1);
            }
        }
    }
    print(
        &["upstream", "kind", "name", "previous_digest", "digest"],
        &rows,
        format,
        "nothing to accept: every definition matches its pin",
    );
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

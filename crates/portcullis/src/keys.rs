//! `portcullis keys …`: API keys. A key is printed once by `create`; the store keeps only its
//! HMAC (crates/authn).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use comfy_table::Table;
use portcullis_authn::{NewKey, PrincipalKind, admin, rfc3339_ms};
use secrecy::ExposeSecret;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; prints `id: KEY_ID` and `key: pk_…` (the key is shown only now).
    Create {
        /// The principal the key authenticates as.
        #[arg(long)]
        principal: String,
        /// A role (Cedar parent `Portcullis::Role::"…"`). Repeatable.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long, value_enum, default_value_t = Kind::User)]
        kind: Kind,
        /// Lifetime, e.g. `90d`; default: until revoked.
        #[arg(long, value_name = "DUR", value_parser = duration)]
        expires: Option<Duration>,
    },
    /// List keys: id, principal, roles, created, expires, last used (never the key).
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke a key: every replica refuses it within a second.
    Revoke {
        /// The key id (first column of `keys list`).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    User,
    Service,
}

impl From<Kind> for PrincipalKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::User => PrincipalKind::User,
            Kind::Service => PrincipalKind::Service,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `30s`, `15m`, `90d` (the configuration's duration syntax).
pub fn duration(text: &str) -> Result<Duration, String> {
    portcullis_config::parse_duration(text)
}

fn failed(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

pub async fn dispatch(config_path: &Path, command: KeysCommand) -> ExitCode {
    let config = match crate::run::load(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match command {
        KeysCommand::Create {
            principal,
            roles,
            kind,
            expires,
        } => {
            let new = NewKey {
                principal,
                kind: kind.into(),
                roles,
                expires_in: expires,
            };
            match admin::create_key(&config, new).await {
                Ok(created) => {
                    println!("id: {}", created.info.id);
                    println!("key: {}", created.key.expose_secret());
                    eprintln!("Store the key now: it is not shown again (only its HMAC is kept).");
                    if !config.auth.api_keys {
                        eprintln!(
                            "warning: auth.api_keys is not enabled in {}: the gateway will refuse \
                             this key until it is",
                            config_path.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => failed(e),
            }
        }
        KeysCommand::List { format } => match admin::list_keys(&config).await {
            Ok(keys) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                match format {
                    Format::Json => {
                        let rows: Vec<String> =
                            keys.iter().map(|k| k.to_json(now).to_string()).collect();
                        println!("[{}]", rows.join(","));
                    }
                    Format::Table => {
                        let mut table = Table::new();
                        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
                        table.set_header([
                            "id",
                            "principal",
                            "kind",
                            "roles",
                            "created",
                            "expires",
                            "last used",
                            "status",
                        ]);
                        let or_dash =
                            |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), rfc3339_ms);
                        for k in &keys {
                            table.add_row([
                                k.id.clone(),
                                k.principal.clone(),
                                k.kind.as_str().to_owned(),
                                k.roles.join(", "),
                                rfc3339_ms(k.created_ms),
                                or_dash(k.expires_ms),
                                or_dash(k.last_used_ms),
                                k.status(now).to_owned(),
                            ]);
                        }
                        println!("{table}");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => failed(e),
        },
        KeysCommand::Revoke { id } => match admin::revoke_key(&config, &id).await {
            Ok(key) => {
                println!("revoked: {}", key.id);
                ExitCode::SUCCESS
            }
            Err(e) => failed(e),
        },
    }
}

//! `portcullis token mint`: a short-lived access token signed with the gateway's own key
//! (crates/authn `minted`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use portcullis_authn::{MintRequest, admin, rfc3339_ms};
use secrecy::ExposeSecret;

use crate::keys::{Kind, duration};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a JWT (EdDSA, at most 24h) for a principal; prints the token alone on stdout.
    Mint {
        #[arg(long)]
        principal: String,
        /// A scope the token grants. Repeatable; at least one.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// Lifetime, e.g. `15m` (at most 24h).
        #[arg(long, value_name = "DUR", value_parser = duration)]
        ttl: Duration,
        /// The audience (resource) the token is for; default `auth.resource`.
        #[arg(long)]
        audience: Option<String>,
        /// A role (Cedar parent). Repeatable.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        #[arg(long, value_enum, default_value_t = Kind::Service)]
        kind: Kind,
    },
}

pub async fn dispatch(config_path: &Path, command: TokenCommand) -> ExitCode {
    let config = match crate::run::load(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let TokenCommand::Mint {
        principal,
        scopes,
        ttl,
        audience,
        roles,
        kind,
    } = command;
    let missing: Vec<&String> = config
        .auth
        .required_scopes
        .iter()
        .filter(|s| !scopes.contains(s))
        .collect();
    let request = MintRequest {
        principal,
        kind: kind.into(),
        scopes,
        roles,
        ttl,
        audience,
    };
    match admin::mint_token(&config, request).await {
        Ok(minted) => {
            println!("{}", minted.token.expose_secret());
            let expires = minted
                .expires_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| rfc3339_ms(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
                .unwrap_or_default();
            eprintln!(
                "jti {} for {} expires {expires} (signing key {})",
                minted.jti, minted.audience, minted.kid
            );
            if !missing.is_empty() {
                eprintln!(
                    "warning: auth.required_scopes also needs: {}; the gateway will answer 403",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

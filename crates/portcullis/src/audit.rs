//! `portcullis audit …`: checking the audit trail (and, from the reporting side, `report` and
//! `export`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use portcullis_audit::{TrustedKeys, VerifyingKey};

/// Exit codes of `audit verify` (DESIGN §3.1).
const EXIT_TAMPERED: u8 = 1;
const EXIT_BAD_SETUP: u8 = 2;

mod report;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Who did what over a period: calls per principal and tool, denials with reasons and
    /// policies, approvals, errors, anomalies, top talkers, a time series.
    Report {
        /// The period: from this long ago until now (`24h`, `7d`, `30d`).
        #[arg(long, default_value = "7d")]
        since: String,
        /// `md`, `json` or `html`, or several separated by commas.
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to FILE instead of stdout. With several formats: FILE's stem plus each
        /// format's extension (default `audit-report.EXT`).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Do not verify the chain (the report then says "not verified").
        #[arg(long)]
        no_verify: bool,
    },
    /// Every record (or those of the last `--since`) to stdout for a SIEM, one a line.
    Export {
        /// `jsonl` (the stored records), `cef` (ArcSight) or `syslog` (RFC 5424).
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only records from this long ago until now (`24h`, `7d`).
        #[arg(long)]
        since: Option<String>,
    },
    /// Check the whole chain and its signed checkpoints; name the first bad record.
    /// Exit 0 intact, 1 tampered, 2 bad configuration or unreadable store.
    Verify {
        /// Also trust checkpoints signed by this Ed25519 key (PEM, public or private), e.g. a
        /// signing key used before a rotation. Repeatable.
        #[arg(long = "public-key", value_name = "FILE")]
        public_keys: Vec<PathBuf>,
        /// `text`: a one-line verdict and details; `json`: the full report.
        #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
        format: VerifyFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    Text,
    Json,
}

pub async fn dispatch(config: &Path, command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Report {
            since,
            format,
            output,
            no_verify,
        } => report::report(config, &since, &format, output.as_deref(), !no_verify).await,
        AuditCommand::Export { format, since } => {
            report::export_records(config, &format, since.as_deref()).await
        }
        AuditCommand::Verify {
            public_keys,
            format,
        } => verify(config, &public_keys, format).await,
    }
}

fn setup_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_SETUP)
}

async fn verify(config_path: &Path, public_keys: &[PathBuf], format: VerifyFormat) -> ExitCode {
    let config = match crate::run::load(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut extra: Vec<VerifyingKey> = Vec::new();
    for path in public_keys {
        let key = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|pem| portcullis_audit::signing::verifying_key_from_pem(&pem));
        match key {
            Ok(key) => extra.push(key),
            Err(e) => return setup_error(format!("--public-key {}: {e}", path.display())),
        }
    }
    let key_dir = portcullis_audit::key_dir(&config);
    let trusted: TrustedKeys = match portcullis_audit::trusted_keys(&config.audit, &key_dir, extra)
    {
        Ok(trusted) => trusted,
        Err(e) => return setup_error(e),
    };
    let store = match report::open_store(&config).await {
        Ok(store) => store,
        Err(e) => return setup_error(e),
    };
    let outcome = async {
        let signed = !portcullis_audit::checkpoints(&store).await?.is_empty();
        if signed && trusted.is_empty() {
            return Ok(None);
        }
        portcullis_audit::verify(&store, &trusted).await.map(Some)
    }
    .await;
    store.close().await;
    let report = match outcome {
        Ok(Some(report)) => report,
        Ok(None) => {
            return setup_error(format!(
                "the store has signed checkpoints but no key to check them: set [audit] \
                 signing_key, keep {} in {}, or pass --public-key",
                portcullis_audit::signing::GENERATED_KEY_FILE,
                key_dir.display()
            ));
        }
        Err(e) => return setup_error(e),
    };
    match format {
        VerifyFormat::Json => println!("{}", report.to_json()),
        VerifyFormat::Text => {
            println!("{}", report.verdict());
            if let Some(anchor) = report.anchor {
                println!("starts after retention anchor at seq {anchor}");
            }
            if let Some(last) = report.last_checkpoint {
                println!("last signed checkpoint: seq {last}");
            }
            if !trusted.is_empty() {
                println!("trusted signing keys: {}", trusted.ids().join(", "));
            }
        }
    }
    if report.intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_TAMPERED)
    }
}

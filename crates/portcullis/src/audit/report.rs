//! `portcullis audit report` and `portcullis audit export`: reading the trail for people
//! (Markdown, JSON, HTML) and for a SIEM (JSONL, CEF, syslog lines on stdout).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use portcullis_audit::export::{ExportFormat, export};
use portcullis_audit::report::{ChainState, ChainStatus, ReportFormat, render, report_from_store};
use portcullis_store::Store;

use super::setup_error;

/// `--since 7d` → the Unix milliseconds that long before `now_ms`.
fn since_ms(text: &str, now_ms: i64) -> Result<i64, String> {
    let span =
        portcullis_config::parse_duration(text).map_err(|e| format!("--since {text:?}: {e}"))?;
    let span = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
    Ok(now_ms.saturating_sub(span))
}

/// The store with the audit tables migrated.
pub(super) async fn open_store(config: &portcullis_config::Config) -> Result<Store, String> {
    let store = Store::open(&config.storage.url)
        .await
        .map_err(|e| e.to_string())?;
    portcullis_audit::migrate(&store)
        .await
        .map_err(|e| e.to_string())?;
    Ok(store)
}

/// The configuration and its audit store, or the exit code to end with.
async fn load_store(config_path: &Path) -> Result<(portcullis_config::Config, Store), ExitCode> {
    let config = crate::run::load(config_path)?;
    let store = open_store(&config).await.map_err(setup_error)?;
    Ok((config, store))
}

/// What `audit verify` would say, for the report's header and footer.
async fn chain_status(config: &portcullis_config::Config, store: &Store) -> ChainStatus {
    let key_dir = portcullis_audit::key_dir(config);
    let not_verified = |detail: String| ChainStatus {
        state: ChainState::NotVerified,
        detail,
    };
    let trusted = match portcullis_audit::trusted_keys(&config.audit, &key_dir, []) {
        Ok(trusted) => trusted,
        Err(e) => return not_verified(format!("no signing key to check checkpoints with: {e}")),
    };
    match portcullis_audit::verify(store, &trusted).await {
        Ok(report) => {
            let verdict = report.verdict();
            let (state, prefix) = if report.intact() {
                (ChainState::Intact, "intact: ")
            } else {
                (ChainState::Tampered, "tampered: ")
            };
            ChainStatus {
                state,
                detail: verdict.strip_prefix(prefix).unwrap_or(&verdict).to_owned(),
            }
        }
        Err(e) => not_verified(format!("verification could not run: {e}")),
    }
}

/// Where each format goes: stdout for one format without `--output`; `--output` for one;
/// `STEM.EXT` per format for several (`--output` gives the stem, default `audit-report`).
fn destinations(
    formats: &[ReportFormat],
    output: Option<&Path>,
) -> Vec<(ReportFormat, Option<PathBuf>)> {
    match (formats, output) {
        ([format], None) => vec![(*format, None)],
        ([format], Some(path)) => vec![(*format, Some(path.to_path_buf()))],
        (formats, output) => {
            let stem =
                output.map_or_else(|| PathBuf::from("audit-report"), |p| p.with_extension(""));
            formats
                .iter()
                .map(|f| (*f, Some(stem.with_extension(f.extension()))))
                .collect()
        }
    }
}

pub async fn report(
    config_path: &Path,
    since: &str,
    format: &str,
    output: Option<&Path>,
    verify: bool,
) -> ExitCode {
    let formats = match ReportFormat::parse_list(format) {
        Ok(formats) => formats,
        Err(e) => return setup_error(format!("--format: {e}")),
    };
    let now = portcullis_store::now_ms();
    let since = match since_ms(since, now) {
        Ok(since) => since,
        Err(e) => return setup_error(e),
    };
    let (config, store) = match load_store(config_path).await {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let chain = if verify {
        chain_status(&config, &store).await
    } else {
        ChainStatus {
            state: ChainState::NotVerified,
            detail: "skipped (--no-verify)".to_owned(),
        }
    };
    let report = report_from_store(&store, since, now).await;
    store.close().await;
    let report = match report {
        Ok(report) => report,
        Err(e) => return setup_error(e),
    };
    if chain.state == ChainState::Tampered {
        eprintln!("warning: the audit chain is TAMPERED: {}", chain.detail);
    }
    for (format, path) in destinations(&formats, output) {
        let text = match render(&report, format, &chain) {
            Ok(text) => text,
            Err(e) => {
                return setup_error(format!(
                    "cannot render the {} report: {e}",
                    format.extension()
                ));
            }
        };
        match path {
            None => {
                let mut stdout = std::io::stdout();
                if let Err(e) = stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    && e.kind() != std::io::ErrorKind::BrokenPipe
                {
                    return setup_error(e);
                }
            }
            Some(path) => {
                if let Err(e) = std::fs::write(&path, text) {
                    return setup_error(format!("cannot write {}: {e}", path.display()));
                }
                eprintln!("wrote {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}

pub async fn export_records(config_path: &Path, format: &str, since: Option<&str>) -> ExitCode {
    let format: ExportFormat = match format.parse() {
        Ok(format) => format,
        Err(e) => return setup_error(format!("--format: {e}")),
    };
    let since = match since
        .map(|s| since_ms(s, portcullis_store::now_ms()))
        .transpose()
    {
        Ok(since) => since,
        Err(e) => return setup_error(e),
    };
    let (_, store) = match load_store(config_path).await {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let result = export(&store, format, since, &mut out).await;
    store.close().await;
    match result {
        Ok(count) => {
            tracing::debug!(count, "audit export done");
            ExitCode::SUCCESS
        }
        Err(e) => setup_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_destinations() {
        use ReportFormat::*;
        assert_eq!(destinations(&[Markdown], None), vec![(Markdown, None)]);
        assert_eq!(
            destinations(&[Html], Some(Path::new("r.html"))),
            vec![(Html, Some(PathBuf::from("r.html")))]
        );
        assert_eq!(
            destinations(&[Markdown, Html], Some(Path::new("out/weekly.html"))),
            vec![
                (Markdown, Some(PathBuf::from("out/weekly.md"))),
                (Html, Some(PathBuf::from("out/weekly.html")))
            ]
        );
        assert_eq!(
            destinations(&[Json, Html], None),
            vec![
                (Json, Some(PathBuf::from("audit-report.json"))),
                (Html, Some(PathBuf::from("audit-report.html")))
            ]
        );
    }

    #[test]
    fn since_is_relative_to_now() {
        assert_eq!(since_ms("7d", 10 * 86_400_000), Ok(3 * 86_400_000));
        assert_eq!(since_ms("90m", 6_000_000), Ok(600_000));
        assert!(since_ms("yesterday", 0).is_err());
    }
}

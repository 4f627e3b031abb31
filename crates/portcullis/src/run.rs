//! `run` and `check`.

use std::path::Path;
use std::process::ExitCode;

use portcullis_config::Config;

/// Exit code for an invalid configuration (DESIGN §3.1).
pub const EXIT_BAD_CONFIG: u8 = 2;

pub fn load(path: &Path) -> Result<Config, ExitCode> {
    match portcullis_config::load(path) {
        Ok(c) => Ok(c),
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("configuration invalid: {} problem(s)", errors.len());
            Err(ExitCode::from(EXIT_BAD_CONFIG))
        }
    }
}

pub fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            for w in &config.warnings {
                println!("warning: {w}");
            }
            match portcullis_authz::PolicySet::load(&config.authz.policies) {
                Ok(set) => {
                    for w in set.warnings() {
                        println!("warning: {w}");
                    }
                }
                Err(errors) => {
                    eprintln!("{errors}");
                    eprintln!("policies invalid: {} problem(s)", errors.len());
                    return ExitCode::from(EXIT_BAD_CONFIG);
                }
            }
            if let Err(errors) = portcullis_guard::GuardSet::build(&config) {
                for e in &errors {
                    eprintln!("error: {e}");
                }
                eprintln!("guard rules invalid: {} problem(s)", errors.len());
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            let mut problems: Vec<String> = portcullis_audit::check_keys(&config.audit)
                .into_iter()
                .map(|p| format!("audit: {p}"))
                .collect();
            if let Some(tls) = &config.listen.tls
                && let Err(e) = portcullis_authn::tls::server_config(tls)
            {
                problems.push(format!("listen.tls: {e}"));
            }
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("error: {p}");
                }
                eprintln!("configuration invalid: {} problem(s)", problems.len());
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            println!(
                "{}: ok ({} upstream(s))",
                path.display(),
                config.upstreams.len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub async fn run(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => serve(config).await,
        Err(code) => code,
    }
}

/// Serves `config` until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> ExitCode {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let listener = match tokio::net::TcpListener::bind(config.listen.addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(addr = %config.listen.addr, error = %e, "cannot listen");
            return ExitCode::from(1);
        }
    };
    let tls = match &config.listen.tls {
        None => None,
        Some(tls) => match portcullis_authn::tls::server_config(tls) {
            Ok(c) => Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(c))),
            Err(e) => {
                tracing::error!(error = %e, "cannot set up TLS");
                eprintln!("error: listen.tls: {e}");
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
        },
    };
    let gateway = match portcullis_gateway::Gateway::build(&config).await {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    crate::logging::redact_with(std::sync::Arc::clone(&gateway.guard.redactor));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    tracing::info!(addr = %config.listen.addr, scheme, upstreams = config.upstreams.len(), workers, "listening on /mcp");
    match portcullis_gateway::serve::serve(
        gateway,
        listener,
        config.listen.max_connections,
        tls,
        stop_signal(),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::from(1)
        }
    }
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

//! Flags and subcommands (DESIGN §3.1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A security gateway for the Model Context Protocol"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = "portcullis.toml")]
    pub config: PathBuf,
    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// Threads that run the gateway's tasks [default: one less than the machine's cores, at
    /// least one, which leaves a core to SQLite's threads and the kernel's network work].
    #[arg(long, global = true, env = "PORTCULLIS_WORKERS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gateway.
    Run,
    /// Validate the configuration without serving; prints every problem.
    Check,
    /// Start on 127.0.0.1:8080 with a built-in example upstream; no setup needed.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
    },
    /// Cedar policies: `policy test` decides one request offline.
    Policy {
        #[command(subcommand)]
        command: crate::policy::PolicyCommand,
    },
    /// Fetch every upstream's tools, prompts and templates; report poisoning findings and
    /// changed pins (exit 1 when there are any).
    Scan {
        #[arg(long, value_enum, default_value_t = crate::scan::Format::Table)]
        format: crate::scan::Format,
    },
    /// Tool pins: `pins accept [--upstream NAME]`.
    Pins {
        #[command(subcommand)]
        command: crate::scan::PinsCommand,
    },
    /// The audit trail: `audit verify` checks the hash chain and signed checkpoints.
    Audit {
        #[command(subcommand)]
        command: crate::audit::AuditCommand,
    },
    /// API keys: `keys create`, `keys list`, `keys revoke`.
    Keys {
        #[command(subcommand)]
        command: crate::keys::KeysCommand,
    },
    /// Gateway-signed access tokens: `token mint`.
    Token {
        #[command(subcommand)]
        command: crate::token::TokenCommand,
    },
    /// The bundled example MCP server (what `demo` runs as its upstream).
    #[command(hide = true)]
    DemoUpstream {
        /// Directory the example file tools work in.
        #[arg(long)]
        root: PathBuf,
        /// Serve Streamable HTTP on this address instead of stdio.
        #[arg(long)]
        http: Option<SocketAddr>,
    },
}

pub async fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run => crate::run::run(&cli.config).await,
        Command::Check => crate::run::check(&cli.config),
        Command::Demo { addr } => crate::demo::demo(addr).await,
        Command::Policy { command } => crate::policy::dispatch(&cli.config, command),
        Command::Scan { format } => crate::scan::scan(&cli.config, format).await,
        Command::Pins { command } => crate::scan::pins(&cli.config, command).await,
        Command::Audit { command } => crate::audit::dispatch(&cli.config, command).await,
        Command::Keys { command } => crate::keys::dispatch(&cli.config, command).await,
        Command::Token { command } => crate::token::dispatch(&cli.config, command).await,
        Command::DemoUpstream { root, http } => crate::demo::upstream(root, http).await,
    }
}

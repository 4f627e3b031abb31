//! `demo`: a working gateway with zero setup, and the bundled example upstream it runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub async fn demo(addr: SocketAddr) -> ExitCode {
    let state = std::env::temp_dir().join(format!("portcullis-demo-{}", std::process::id()));
    let root = state.join("files");
    if let Err(e) = seed(&state, &root) {
        eprintln!(
            "error: cannot prepare the demo directory {}: {e}",
            state.display()
        );
        return ExitCode::from(1);
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find this program's path: {e}");
            return ExitCode::from(1);
        }
    };
    let text = format!(
        r#"
[listen]
addr = "{addr}"

[storage]
url = {db:?}

[auth]
# The demo runs without credentials on loopback only.
dangerous_allow_anonymous = true

[authz]
policies = [{policy:?}]

[[upstream]]
name = "demo"
command = [{exe:?}, "demo-upstream", "--root", {root:?}]
"#,
        exe = exe.display().to_string(),
        root = root.display().to_string(),
        db = format!("sqlite://{}", state.join("portcullis.db").display()),
        policy = state.join("policies").join("*.cedar").display().to_string(),
    );
    let config = match portcullis_config::from_str(&text, None, &portcullis_config::ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: built-in demo configuration is invalid:\n{e}");
            return ExitCode::from(crate::run::EXIT_BAD_CONFIG);
        }
    };
    print_hints(addr, &root);
    let code = crate::run::serve(config).await;
    let _ = std::fs::remove_dir_all(&state);
    code
}

/// The demo's policy: the anonymous demo caller may use everything but the one tool that
/// reaches the network, so a denial is there to see. Edit the file while the demo runs: it is
/// reloaded.
const DEMO_POLICY: &str = r#"@id("demo-allow")
permit (principal, action, resource);

@id("demo-no-network")
@reason("the demo keeps tools that reach the network switched off")
forbid (principal, action == Portcullis::Action::"call_tool", resource)
when { resource.name == "demo__fetch_url" };
"#;

fn seed(state: &Path, root: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    std::fs::create_dir_all(state.join("policies"))?;
    std::fs::write(state.join("policies").join("demo.cedar"), DEMO_POLICY)?;
    std::fs::write(root.join("hello.txt"), "Hello from the Portcullis demo.\n")?;
    std::fs::write(
        root.join("notes.md"),
        "# Notes\n\nFiles here are served by the demo upstream.\n",
    )?;
    Ok(())
}

fn print_hints(addr: SocketAddr, root: &std::path::Path) {
    println!(
        "Portcullis demo: MCP endpoint http://{addr}/mcp (upstream \"demo\", files in {})",
        root.display()
    );
    println!(
        "Tools are exposed as demo__echo, demo__read_file, demo__write_file, demo__fetch_url, ..."
    );
    println!("Try (2026-07-28, stateless):");
    println!(
        r#"  curl -s http://{addr}/mcp -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: demo__echo' \
    -d '{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"demo__echo","arguments":{{"message":"hi"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}'"#
    );
    println!(
        "Policy: {} (demo__fetch_url is denied; edit the file and it is reloaded)",
        root.parent()
            .unwrap_or(root)
            .join("policies/demo.cedar")
            .display()
    );
    println!(
        "Health: curl http://{addr}/readyz   Metrics: curl http://{addr}/metrics   Stop: Ctrl-C"
    );
}

pub async fn upstream(root: PathBuf, http: Option<SocketAddr>) -> ExitCode {
    let result = match http {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => portcullis_demo_upstream::serve_http(l, root).await,
            Err(e) => Err(e),
        },
        None => portcullis_demo_upstream::serve_stdio(root).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo upstream failed: {e}");
            ExitCode::from(1)
        }
    }
}

//! Benchmarks. `bench/run` drives load through the gateway against the `bench-upstream` binary;
//! `cargo bench -p portcullis-bench` measures the hot stages one by one (`benches/stages.rs`).

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// Runs a benchmark binary's `main` future on a multi-threaded runtime (`workers` threads, or
/// one per core), printing a failure as `NAME: error` and exiting 1.
pub fn run<E: Display>(
    name: &str,
    workers: Option<usize>,
    main: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    let outcome = match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(main).map_err(|e| e.to_string()),
        Err(e) => Err(format!("runtime: {e}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(1)
        }
    }
}

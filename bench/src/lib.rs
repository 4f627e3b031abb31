//! Benchmarks. `bench/run` drives load through the gateway against the `bench-upstream` binary;
//! `cargo bench -p portcullis-bench` measures the hot stages one by one (`benches/stages.rs`).

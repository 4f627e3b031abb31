//! Cost of redaction per KB of result text: `cargo bench -p portcullis-guard --bench redact_per_kb`.
//! Divan prints time per iteration and throughput (bytes/s) for each input.

use portcullis_config::RedactSet;
use portcullis_guard::redact::Redactor;

fn main() {
    divan::main();
}

/// ~1 KB of ordinary tool output: prose, paths, identifiers, numbers; no secrets.
fn clean_kb() -> String {
    let line = "Listed 42 files under /srv/data/reports (2024-05-06T10:30:00Z): report-7.pdf, \
                notes.md, request 550e8400-e29b-41d4-a716-446655440000 took 35 ms; the key \
                metric improved by 3.5% and the api access log rotated. ";
    line.repeat(1024 / line.len() + 1)[..1024].to_owned()
}

/// The same KB with a few secrets and personal data mixed in.
fn dirty_kb() -> String {
    let mut text = clean_kb();
    text.truncate(700);
    text.push_str(
        " AKIAP6PPB2TDBM72FQO3 ghp_muxV5EbOApZOXzcycDeZ6dqmVe5Mvxrv99Nc jane.roe@example.org \
         card 4111 1111 1111 1111 postgres://app:oPchv5V7S82qTdrO@db.internal/prod \
         api_key = \"JRBRY6HqsP795nf4Gakq5p1Vm8kV6um4\" +1 415 555 2671 ",
    );
    text
}

fn redactor() -> Redactor {
    Redactor::new(&[RedactSet::Secrets, RedactSet::Pii], &[]).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    })
}

#[divan::bench(args = [1, 64])]
fn redact_per_kb_clean(bencher: divan::Bencher<'_, '_>, kb: usize) {
    let r = redactor();
    let text = clean_kb().repeat(kb);
    bencher
        .counter(divan::counter::BytesCount::of_str(&text))
        .bench_local(|| r.redact_str(divan::black_box(&text)).len());
}

#[divan::bench(args = [1, 64])]
fn redact_per_kb_with_secrets(bencher: divan::Bencher<'_, '_>, kb: usize) {
    let r = redactor();
    let text = dirty_kb().repeat(kb);
    bencher
        .counter(divan::counter::BytesCount::of_str(&text))
        .bench_local(|| r.redact_str(divan::black_box(&text)).len());
}

#[divan::bench]
fn build_redactor() -> Redactor {
    redactor()
}

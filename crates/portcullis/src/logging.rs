//! Log set-up: JSON for machines, pretty for people; levels from `RUST_LOG` (default `info`).
//!
//! Every formatted line passes the guard's redaction rules once the gateway has built them
//! ([`redact_with`]): whatever a log line quotes (an upstream's error text, a URI, a header
//! value) reaches stderr with secrets and personal data masked.

use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

use portcullis_guard::redact::Redactor;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::LogFormat;

static REDACTOR: OnceLock<Arc<Redactor>> = OnceLock::new();

/// Masks secrets and personal data in every log line from now on.
pub fn redact_with(redactor: Arc<Redactor>) {
    let _ = REDACTOR.set(redactor);
}

struct Redacting;

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter
    }
}

/// Writes one formatted event (the formatter writes each event in one call) to stderr.
struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut err = io::stderr().lock();
        match (REDACTOR.get(), std::str::from_utf8(buf)) {
            (Some(redactor), Ok(text)) => err.write_all(redactor.redact_str(text).as_bytes())?,
            _ => err.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

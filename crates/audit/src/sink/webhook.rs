//! The webhook sink: each batch as one `POST` of a JSON array of records (each exactly the
//! stored form), with the configured headers. Any 2xx accepts the batch; anything else is
//! retried with backoff. Delivery is at least once: a batch whose answer was lost is sent
//! again, so receivers deduplicate by `seq` (or `hash`).

use std::time::Duration;

use portcullis_config::Secret;

use super::SinkError;
use super::http::{HttpPoster, post_error};
use crate::record::Record;

/// The request body for a batch: `[record, record, …]`.
pub fn webhook_body(batch: &[Record]) -> String {
    let mut body = String::from("[");
    for (i, record) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&record.to_json_line());
    }
    body.push(']');
    body
}

#[derive(Debug)]
pub struct WebhookSink {
    poster: HttpPoster,
}

impl WebhookSink {
    pub fn new(
        url: &str,
        headers: &[(String, Secret)],
        timeout: Duration,
    ) -> Result<WebhookSink, SinkError> {
        Ok(WebhookSink {
            poster: HttpPoster::new(url, headers, timeout)?,
        })
    }

    pub fn origin(&self) -> String {
        self.poster.origin()
    }

    pub async fn deliver(&self, batch: &[Record]) -> Result<(), SinkError> {
        self.poster
            .post(webhook_body(batch).into_bytes(), "application/json")
            .await
            .map_err(post_error)?;
        Ok(())
    }
}

//! One HTTP POST target shared by the OTLP and webhook sinks: fixed URL and headers (secret
//! values marked sensitive), a timeout, 2xx or an error that names no URL (it may hold a
//! token).

use std::time::Duration;

use portcullis_config::Secret;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use super::SinkError;

#[derive(Debug)]
pub(crate) struct HttpPoster {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
}

/// Why a POST failed.
#[derive(Debug)]
pub(crate) enum PostFailure {
    Status(u16),
    Transport(String),
}

pub(crate) fn post_error(failure: PostFailure) -> SinkError {
    match failure {
        PostFailure::Status(status) => SinkError::Status(status),
        PostFailure::Transport(reason) => SinkError::Http(reason),
    }
}

impl HttpPoster {
    pub(crate) fn new(
        url: &str,
        headers: &[(String, Secret)],
        timeout: Duration,
    ) -> Result<HttpPoster, SinkError> {
        let url = reqwest::Url::parse(url).map_err(|e| SinkError::Config(format!("url: {e}")))?;
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| SinkError::Config(format!("header name {name:?}: {e}")))?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                SinkError::Config(format!("header {name}: value is not a valid header value"))
            })?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SinkError::Http(e.without_url().to_string()))?;
        Ok(HttpPoster {
            client,
            url,
            headers: map,
        })
    }

    /// `scheme://host:port` of the target, for logs (no path or query: they may hold tokens).
    pub(crate) fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// POSTs `body`; the response body on 2xx.
    pub(crate) async fn post(
        &self,
        body: Vec<u8>,
        content_type: &'static str,
    ) -> Result<Vec<u8>, PostFailure> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| PostFailure::Transport(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(PostFailure::Status(status.as_u16()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PostFailure::Transport(e.without_url().to_string()))?;
        Ok(bytes.to_vec())
    }
}

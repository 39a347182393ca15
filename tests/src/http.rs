//! Responses for assertions: [`Answer`] reads one whole (status, headers, JSON body) and
//! checks the contract's error envelope.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

/// A response decoded for assertions: status, headers and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Reads a response whole.
    pub async fn of(res: reqwest::Response) -> Self {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Self {
            status,
            headers,
            body,
        }
    }

    /// The error code of an envelope.
    #[must_use]
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// A header as a string.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    }

    /// Asserts the response is the contract's error envelope with `status` and `code`,
    /// carrying the same request id in the body and the `X-Request-Id` header.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status of {:?}", self.body);
        assert_eq!(self.code(), code, "code of {:?}", self.body);
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "message in {:?}",
            self.body
        );
        assert!(
            self.body["error"]["details"].is_object(),
            "details in {:?}",
            self.body
        );
        let id = self.body["request_id"]
            .as_str()
            .expect("request_id in the envelope");
        assert_eq!(
            self.header("x-request-id"),
            Some(id),
            "X-Request-Id matches the envelope"
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "JSON content type"
        );
    }
}

/// The value of one sample line of a Prometheus exposition, 0 when absent.
#[must_use]
pub fn metric_sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A `multipart/form-data` body built part by part, as HTML forms and SDKs send it.
#[derive(Debug, Default)]
pub struct Form {
    body: Vec<u8>,
}

impl Form {
    /// The boundary every form of the harness uses.
    pub const BOUNDARY: &'static str = "filegate-test-boundary";

    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A text field.
    #[must_use]
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.body.extend_from_slice(
            format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                Self::BOUNDARY
            )
            .as_bytes(),
        );
        self
    }

    /// The head of a file part named `file`: what comes before its bytes (for a body
    /// a test sends piece by piece).
    #[must_use]
    pub fn file_head(filename: &str, content_type: &str) -> String {
        format!(
            "--{}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: {content_type}\r\n\r\n",
            Self::BOUNDARY
        )
    }

    /// A file part named `file`.
    #[must_use]
    pub fn file(mut self, filename: &str, content_type: &str, bytes: &[u8]) -> Self {
        self.body
            .extend_from_slice(Self::file_head(filename, content_type).as_bytes());
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The body, closed.
    #[must_use]
    pub fn body(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{}--\r\n", Self::BOUNDARY).as_bytes());
        self.body
    }

    /// Its `Content-Type`.
    #[must_use]
    pub fn content_type() -> String {
        format!("multipart/form-data; boundary={}", Self::BOUNDARY)
    }
}

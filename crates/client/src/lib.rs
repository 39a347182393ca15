//! A typed client for filegate's HTTP API ([`Client`]), and the `filegate upload`,
//! `ls`, `rm` and `usage` commands built on it ([`cli`]).

pub mod cli;
mod multipart;
mod progress;
mod types;
pub mod webhooks;

use std::time::Duration;

use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use multipart::{PartsJob, part_digests};
pub use progress::ProgressBody;
pub use types::*;

/// What can go wrong talking to filegate or the object store.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// filegate answered with its error envelope (`code` is `None` when the answer
    /// was no envelope of filegate's, e.g. a proxy's).
    #[error("{status} {}: {message}", .code.map_or("unknown", ErrorCode::as_str))]
    Api {
        status: u16,
        code: Option<ErrorCode>,
        message: String,
        details: serde_json::Value,
        request_id: String,
    },
    /// The object store refused an upload.
    #[error("the object store answered {status}: {body}")]
    Store { status: u16, body: String },
    /// No answer, or one that is not what the API promises.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
}

impl ClientError {
    /// The API error code, if filegate answered with one.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }
}

/// A filegate API client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// A client for the API at `base` (e.g. `http://127.0.0.1:8080`) using `api_key`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(base: &str, api_key: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Below the 5 s for which filegate (actix-web) keeps an idle connection:
            // reusing one the server is closing fails a request that never arrived.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: api_key.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn read<T: DeserializeOwned>(res: reqwest::Response) -> Result<T, ClientError> {
        let status = res.status();
        if status.is_success() {
            return Ok(res.json().await?);
        }
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        Err(ClientError::Api {
            status: status.as_u16(),
            code: serde_json::from_value(body["error"]["code"].clone()).ok(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .to_owned(),
            details: body["error"]["details"].clone(),
            request_id: body["request_id"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// `POST /v2/files`.
    ///
    /// # Errors
    /// [`ClientError::Api`] with the contract's codes (`invalid_metadata`, `quota_exceeded`, …).
    pub async fn create_files(
        &self,
        req: &CreateFilesRequest,
    ) -> Result<CreateFilesResponse, ClientError> {
        Self::read(
            self.http
                .post(self.url("/v2/files"))
                .bearer_auth(&self.key)
                .json(req)
                .send()
                .await?,
        )
        .await
    }

    /// PUTs `body` to a created file's presigned URL with exactly its `upload_headers`
    /// (the HTTP client sets `Content-Length` from the body).
    ///
    /// # Errors
    /// [`ClientError::Store`] when the object store refuses the upload.
    pub async fn upload(
        &self,
        file: &CreatedFile,
        body: impl Into<reqwest::Body>,
    ) -> Result<(), ClientError> {
        let Some(url) = &file.file_url else {
            return Err(ClientError::Store {
                status: 0,
                body: "this file uploads in parts (upload_method MULTIPART): use upload_part"
                    .to_owned(),
            });
        };
        self.put(url, &file.upload_headers, body).await
    }

    /// `POST /v2/files/-/uploads`: sends a file's `length` bytes through filegate, which
    /// reserves, stores and verifies it before it answers (for hosts that cannot reach
    /// the bucket). The answer is the file, ready.
    ///
    /// # Errors
    /// [`ClientError::Api`]: `upload_mismatch` (the bytes are not what the file says;
    /// it is rejected), `payload_too_large`, `quota_exceeded`, the rules' codes.
    pub async fn upload_direct(
        &self,
        upload: &DirectUpload<'_>,
        body: reqwest::Body,
        length: u64,
    ) -> Result<UploadedFile, ClientError> {
        let mut file = reqwest::multipart::Part::stream_with_length(body, length)
            .file_name(upload.name.to_owned());
        if let Some(content_type) = upload.content_type {
            file = file.mime_str(content_type)?;
        }
        let mut form = reqwest::multipart::Form::new().text("path", upload.path.to_owned());
        for label in upload.labels {
            form = form.text("labels", label.clone());
        }
        if let Some(url) = upload.public_url {
            form = form.text("public_url", url.to_owned());
        }
        let mut req = self
            .http
            .post(self.url("/v2/files/-/uploads"))
            .bearer_auth(&self.key)
            .multipart(form.part("file", file));
        if let Some(ws) = upload.workspace_uuid {
            req = req.query(&[("workspace_uuid", ws)]);
        }
        Self::read(req.send().await?).await
    }

    /// `GET /v2/files/{file_uuid}/status`.
    ///
    /// # Errors
    /// [`ClientError::Api`] `not_found` for a file the key cannot see.
    pub async fn status(&self, id: Uuid) -> Result<FileProcessing, ClientError> {
        Self::read(
            self.http
                .get(self.url(&format!("/v2/files/{id}/status")))
                .bearer_auth(&self.key)
                .send()
                .await?,
        )
        .await
    }

    /// PUTs one part to its presigned URL with exactly its headers.
    ///
    /// # Errors
    /// [`ClientError::Store`] when the object store refuses the part (another length or
    /// digest than the signed ones).
    pub async fn upload_part(
        &self,
        part: &PartUrl,
        body: impl Into<reqwest::Body>,
    ) -> Result<(), ClientError> {
        self.put(&part.url, &part.headers, body).await
    }

    async fn put(
        &self,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        body: impl Into<reqwest::Body>,
    ) -> Result<(), ClientError> {
        let mut req = self.http.put(url).body(body);
        for (name, value) in headers {
            // The HTTP client sets the length from the body, except for an empty one,
            // which it sends without the header a signed URL requires.
            if !name.eq_ignore_ascii_case("content-length") || value == "0" {
                req = req.header(name, value);
            }
        }
        let res = req.send().await?;
        if res.status().is_success() {
            return Ok(());
        }
        let status = res.status().as_u16();
        Err(ClientError::Store {
            status,
            body: res.text().await.unwrap_or_default(),
        })
    }

    /// `POST /v2/files/{id}/parts`: URLs for these parts, each digest signed in.
    ///
    /// # Errors
    /// [`ClientError::Api`]: `invalid_metadata` (a part outside the plan, a bad digest),
    /// `invalid_state` (not a pending multipart file), `not_found`.
    pub async fn sign_parts(
        &self,
        id: Uuid,
        parts: Vec<PartToSign>,
    ) -> Result<MultipartUpload, ClientError> {
        let url = self.url(&format!("/v2/files/{id}/parts"));
        let body = SignPartsRequest { parts };
        Self::read(
            self.http
                .post(url)
                .bearer_auth(&self.key)
                .json(&body)
                .send()
                .await?,
        )
        .await
    }

    /// `GET /v2/files/{id}/parts`: the parts the store holds, and the missing ones.
    ///
    /// # Errors
    /// [`ClientError::Api`]: `invalid_state` (not a pending multipart file), `not_found`.
    pub async fn list_parts(&self, id: Uuid) -> Result<StoredParts, ClientError> {
        let url = self.url(&format!("/v2/files/{id}/parts"));
        Self::read(self.http.get(url).bearer_auth(&self.key).send().await?).await
    }

    /// `POST /v2/files/{id}/complete`.
    ///
    /// # Errors
    /// [`ClientError::Api`]: `upload_mismatch` (rejected), `upload_missing`, `invalid_state`, …
    pub async fn complete(&self, id: Uuid) -> Result<File, ClientError> {
        let url = self.url(&format!("/v2/files/{id}/complete"));
        Self::read(self.http.post(url).bearer_auth(&self.key).send().await?).await
    }

    /// `POST /v2/files/complete`: up to 50 files at once; one entry per file, in
    /// order, each the file (ready) or the error the single route would answer.
    ///
    /// # Errors
    /// [`ClientError::Api`] for the request as a whole (`invalid_metadata`: not 1 to
    /// 50 ids, or one listed twice; `unavailable`).
    pub async fn complete_many(&self, ids: &[Uuid]) -> Result<Vec<CompletedFile>, ClientError> {
        let url = self.url("/v2/files/complete");
        let body = CompleteFilesRequest {
            file_uuids: ids.to_vec(),
        };
        let res = self
            .http
            .post(url)
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await?;
        Ok(Self::read::<CompleteFilesResponse>(res).await?.files)
    }

    /// `GET /v2/files` (one page).
    ///
    /// # Errors
    /// [`ClientError::Api`] for a bad query or a workspace out of reach.
    pub async fn list(&self, query: &ListQuery) -> Result<ListResponse, ClientError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(ws) = query.workspace_uuid {
            params.push(("workspace_uuid", ws.to_string()));
        }
        for (key, value) in [
            ("name", &query.name),
            ("path", &query.path),
            ("status", &query.status),
            ("cursor", &query.cursor),
        ] {
            if let Some(v) = value {
                params.push((key, v.clone()));
            }
        }
        for label in &query.labels {
            params.push(("label", label.clone()));
        }
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        Self::read(
            self.http
                .get(self.url("/v2/files"))
                .bearer_auth(&self.key)
                .query(&params)
                .send()
                .await?,
        )
        .await
    }

    /// `GET /v2/files/{id}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] `not_found` for a file out of reach.
    pub async fn get(&self, id: Uuid) -> Result<FileWithDownload, ClientError> {
        Self::read(
            self.http
                .get(self.url(&format!("/v2/files/{id}")))
                .bearer_auth(&self.key)
                .send()
                .await?,
        )
        .await
    }

    /// `DELETE /v2/files/{id}`.
    ///
    /// # Errors
    /// [`ClientError::Api`] `not_found` for a file out of reach or already deleted.
    pub async fn delete(&self, id: Uuid) -> Result<(), ClientError> {
        let res = self
            .http
            .delete(self.url(&format!("/v2/files/{id}")))
            .bearer_auth(&self.key)
            .send()
            .await?;
        if res.status().is_success() {
            return Ok(());
        }
        Self::read::<serde_json::Value>(res).await.map(|_| ())
    }

    /// `GET /v2/workspaces/{id}/usage`.
    ///
    /// # Errors
    /// [`ClientError::Api`] `forbidden` for a workspace out of reach.
    pub async fn usage(&self, workspace: Uuid) -> Result<UsageResponse, ClientError> {
        let url = self.url(&format!("/v2/workspaces/{workspace}/usage"));
        Self::read(self.http.get(url).bearer_auth(&self.key).send().await?).await
    }
}

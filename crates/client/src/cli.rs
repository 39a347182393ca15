//! `filegate upload | ls | rm | usage`: the API from a terminal. They read
//! `FILEGATE_URL` and `FILEGATE_API_KEY` (and `FILEGATE_WORKSPACE` where a workspace is
//! meant), which `scripts/dev` writes to `.dev/env`.

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use clap::Args;
use futures_util::StreamExt as _;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    Client, ClientError, CompletedFile, CreateFilesRequest, CreatedFile, ErrorCode, FileEntry,
    FileFailure, ListQuery, ProgressBody, UploadMethod,
};

/// The smallest file the server takes in parts (S3's smallest part): smaller ones go in
/// one PUT whatever `--multipart-threshold` says.
const MIN_MULTIPART_BYTES: u64 = 5 << 20;

/// Where the API is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// filegate's base URL.
    #[arg(long, env = "FILEGATE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The API key.
    #[arg(long, env = "FILEGATE_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

impl ClientArgs {
    fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.url, &self.api_key)
    }
}

/// `filegate upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The workspace (default: the key's default workspace).
    #[arg(long, env = "FILEGATE_WORKSPACE")]
    pub workspace: Option<Uuid>,
    /// Library path for every file.
    #[arg(long, default_value = "")]
    pub path: String,
    /// A label for every file (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Uploads at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Files larger than this many bytes (and at least 5 MiB) upload in parts
    /// (multipart), each part's SHA-256 signed into its URL.
    #[arg(long, default_value_t = 64 << 20)]
    pub multipart_threshold: u64,
    /// The part size of multipart uploads (5 MiB to 5 GiB).
    #[arg(long, default_value_t = 8 << 20,
          value_parser = clap::value_parser!(u64).range(5 << 20..=5 << 30))]
    pub part_size: u64,
    /// Where interrupted multipart uploads are remembered, so that running the same
    /// command again sends only the parts the store lacks. Default:
    /// `$XDG_STATE_HOME/filegate/uploads` (`~/.local/state/filegate/uploads`).
    #[arg(long, env = "FILEGATE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Send at most about this many bytes per second (multipart uploads).
    #[arg(long)]
    pub limit_rate: Option<u64>,
    /// Send the bytes through filegate (`POST /v2/files/-/uploads`), which stores and
    /// verifies each file before it answers, instead of straight to the object store:
    /// for hosts that cannot reach the bucket. Files are streamed from disk, one
    /// request each.
    #[arg(long)]
    pub via_api: bool,
    /// Files, or folders to upload recursively.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `filegate ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The workspace (default: the key's default workspace).
    #[arg(long, env = "FILEGATE_WORKSPACE")]
    pub workspace: Option<Uuid>,
    /// Exact name.
    #[arg(long)]
    pub name: Option<String>,
    /// Path prefix.
    #[arg(long)]
    pub path: Option<String>,
    /// Files with any of these labels (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// pending, ready, rejected or expired.
    #[arg(long)]
    pub status: Option<String>,
    /// Most files to show (all pages are followed up to this many).
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `filegate rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// File ids.
    #[arg(required = true)]
    pub ids: Vec<Uuid>,
}

/// `filegate usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The workspace.
    #[arg(long, env = "FILEGATE_WORKSPACE")]
    pub workspace: Uuid,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How one file of an upload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ready; `parts` is `(sent, count)` for a multipart upload.
    Ready {
        id: Uuid,
        size: i64,
        parts: Option<(usize, i32)>,
    },
    Rejected {
        id: Uuid,
        reason: String,
    },
    Failed {
        reason: String,
    },
}

struct LocalFile {
    path: PathBuf,
    name: String,
    size: u64,
    /// The bytes of a file sent with one PUT; empty for a multipart one.
    bytes: Vec<u8>,
    /// A multipart file's part digests, and where its upload is remembered.
    multipart: Option<LocalParts>,
}

struct LocalParts {
    part_size: u64,
    digests: Vec<String>,
    state: PathBuf,
}

/// Files of at most this many parts send their digests with the reservation.
const DIGESTS_IN_RESERVATION: usize = 64;

/// What is remembered of a multipart upload under way.
#[derive(serde::Serialize, serde::Deserialize)]
struct UploadState {
    file_uuid: Uuid,
}

/// The state file of one multipart upload: named by the API, the workspace, and the
/// file's path, size, modification time and part size, so an edited file starts over.
fn state_file(args: &UploadArgs, path: &Path, meta: &std::fs::Metadata) -> PathBuf {
    let dir = args.state_dir.clone().unwrap_or_else(|| {
        std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("filegate/uploads")
    });
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let id = Sha256::digest(format!(
        "{}\n{:?}\n{}\n{}\n{modified}\n{}",
        args.client.url,
        args.workspace,
        canonical.display(),
        meta.len(),
        args.part_size
    ));
    dir.join(format!("{id:x}.json"))
}

fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = BTreeSet::new();
    fn walk(p: &Path, out: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
        if p.is_dir() {
            for entry in std::fs::read_dir(p)? {
                walk(&entry?.path(), out)?;
            }
        } else {
            out.insert(p.to_path_buf());
        }
        Ok(())
    }
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out.into_iter().collect())
}

#[allow(clippy::print_stdout)]
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// `filegate upload`: hash, reserve in batches of up to 50, upload in parallel with
/// progress, complete each, print a summary. Exit status 1 when any file is not ready.
///
/// # Errors
/// When the files cannot be read or the client cannot be built.
pub async fn upload(
    args: UploadArgs,
) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let client = args.client.client()?;
    if args.via_api {
        return Ok(summarize(upload_via_api(&client, &args).await?));
    }
    let mut files = Vec::new();
    for path in collect(&args.files)? {
        let meta = std::fs::metadata(&path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (bytes, multipart) =
            if meta.len() > args.multipart_threshold && meta.len() >= MIN_MULTIPART_BYTES {
                let parts = LocalParts {
                    part_size: args.part_size,
                    digests: crate::part_digests(&path, args.part_size)?,
                    state: state_file(&args, &path, &meta),
                };
                (Vec::new(), Some(parts))
            } else {
                (std::fs::read(&path)?, None)
            };
        files.push(LocalFile {
            path,
            name,
            size: meta.len(),
            bytes,
            multipart,
        });
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:>24.bold} {bar:30} {bytes:>9}/{total_bytes:9} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    let overall = bars.add(
        ProgressBar::new(total)
            .with_style(style.clone())
            .with_prefix("total"),
    );
    let mut outcomes: Vec<(String, Outcome)> = Vec::new();

    // Multipart uploads an earlier run left behind go on where they stopped.
    let mut fresh = Vec::new();
    let mut resumed = Vec::new();
    for local in &files {
        match resumable(&client, local).await {
            Some(file) => resumed.push((local, file)),
            None => fresh.push(local),
        }
    }
    let mut batches: Vec<Vec<(&LocalFile, Sent)>> = vec![resumed];
    for batch in fresh.chunks(50) {
        let (created, refused) = reserve(&client, &args, batch).await;
        outcomes.extend(refused);
        for (local, file) in &created {
            if let (Some(parts), Some(_)) = (&local.multipart, &file.multipart) {
                remember(&parts.state, file.file_uuid);
            }
        }
        batches.push(
            created
                .into_iter()
                .map(|(local, file)| (local, Sent::Created(Box::new(file))))
                .collect(),
        );
    }
    for batch in batches {
        let jobs = batch.into_iter().map(|(local, file)| {
            let bar = bars.insert_before(
                &overall,
                ProgressBar::new(local.size).with_style(style.clone()),
            );
            bar.set_prefix(truncate(&local.name, 24));
            let (client, overall) = (client.clone(), overall.clone());
            let args = &args;
            async move {
                let sent = send(&client, args, local, &file, &bar, &overall).await;
                if sent.is_ok() {
                    bar.set_message("verifying");
                }
                (local, bar, sent)
            }
        });
        let sent: Vec<_> = futures_util::stream::iter(jobs)
            .buffer_unordered(usize::from(args.parallel))
            .collect()
            .await;
        // The batch's uploads are verified together: one request per 50 files.
        let uploaded: Vec<(Uuid, Option<(usize, i32)>)> = sent
            .iter()
            .filter_map(|(_, _, s)| s.as_ref().ok().copied())
            .collect();
        let mut completed = complete_all(&client, &uploaded).await;
        for (local, bar, sent) in sent {
            let outcome = match sent {
                Ok((id, _)) => completed.remove(&id).unwrap_or(Outcome::Failed {
                    reason: "the completion answered nothing for this file".to_owned(),
                }),
                Err(reason) => Outcome::Failed { reason },
            };
            if let Some(parts) = &local.multipart
                && !matches!(outcome, Outcome::Failed { .. })
            {
                // Ready or rejected: nothing left to resume.
                let _ = std::fs::remove_file(&parts.state);
            }
            bar.finish_with_message(match &outcome {
                Outcome::Ready { .. } => "ready".to_owned(),
                Outcome::Rejected { .. } => "rejected".to_owned(),
                Outcome::Failed { .. } => "failed".to_owned(),
            });
            outcomes.push((local.name.clone(), outcome));
        }
    }
    overall.finish();
    let _ = bars.clear();
    Ok(summarize(outcomes))
}

/// Prints one line per file and the totals; failure when any file is not ready.
fn summarize(mut outcomes: Vec<(String, Outcome)>) -> ExitCode {
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut ready, mut rejected, mut failed) = (0, 0, 0);
    for (name, outcome) in &outcomes {
        match outcome {
            Outcome::Ready { id, size, parts } => {
                ready += 1;
                let parts = parts.map_or(String::new(), |(sent, count)| {
                    format!(", sent {sent} of {count} parts")
                });
                say(&format!("ready     {name}  ({size} bytes, {id}{parts})"));
            }
            Outcome::Rejected { id, reason } => {
                rejected += 1;
                say(&format!("rejected  {name}  {reason} ({id})"));
            }
            Outcome::Failed { reason } => {
                failed += 1;
                say(&format!("failed    {name}  {reason}"));
            }
        }
    }
    say(&format!(
        "{ready} ready, {rejected} rejected, {failed} failed"
    ));
    if rejected + failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `filegate upload --via-api`: each file streamed from disk through filegate, which
/// answers once it is stored and verified; `--parallel` at once, with progress.
async fn upload_via_api(
    client: &Client,
    args: &UploadArgs,
) -> Result<Vec<(String, Outcome)>, Box<dyn std::error::Error + Send + Sync>> {
    let paths = collect(&args.files)?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let size = std::fs::metadata(&path)?.len();
        files.push((path, size));
    }
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{prefix:>24.bold} {bar:30} {bytes:>9}/{total_bytes:9} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    let overall = bars.add(
        ProgressBar::new(files.iter().map(|f| f.1).sum())
            .with_style(style.clone())
            .with_prefix("total"),
    );
    let jobs = files.iter().map(|(path, size)| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bar = bars.insert_before(&overall, ProgressBar::new(*size).with_style(style.clone()));
        bar.set_prefix(truncate(&name, 24));
        let overall = overall.clone();
        async move {
            let outcome = send_via_api(client, args, path, &name, *size, &bar, &overall).await;
            bar.finish_with_message(match &outcome {
                Outcome::Ready { .. } => "ready",
                Outcome::Rejected { .. } => "rejected",
                Outcome::Failed { .. } => "failed",
            });
            (name, outcome)
        }
    });
    let outcomes = futures_util::stream::iter(jobs)
        .buffer_unordered(usize::from(args.parallel))
        .collect()
        .await;
    overall.finish();
    let _ = bars.clear();
    Ok(outcomes)
}

/// One file through `POST /v2/files/-/uploads`, streamed from disk.
async fn send_via_api(
    client: &Client,
    args: &UploadArgs,
    path: &Path,
    name: &str,
    size: u64,
    bar: &ProgressBar,
    overall: &ProgressBar,
) -> Outcome {
    use tokio::io::AsyncReadExt as _;
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => {
            return Outcome::Failed {
                reason: e.to_string(),
            };
        }
    };
    bar.set_message("sending");
    let (sent, overall) = (bar.clone(), overall.clone());
    let chunks = futures_util::stream::unfold(Some(file), move |file| {
        let (bar, overall) = (sent.clone(), overall.clone());
        async move {
            let mut file = file?;
            let mut buf = vec![0u8; 256 << 10];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    bar.inc(n as u64);
                    overall.inc(n as u64);
                    Some((Ok(bytes::Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    let upload = crate::DirectUpload {
        workspace_uuid: args.workspace,
        name,
        content_type: None,
        path: &args.path,
        labels: &args.labels,
        public_url: None,
    };
    match client
        .upload_direct(&upload, reqwest::Body::wrap_stream(chunks), size)
        .await
    {
        Ok(uploaded) => Outcome::Ready {
            id: uploaded.file.file.file_uuid,
            size: uploaded.file.file.size_bytes.unwrap_or_default(),
            parts: None,
        },
        Err(ClientError::Api {
            code: Some(ErrorCode::UploadMismatch),
            details,
            message,
            ..
        }) => Outcome::Rejected {
            id: details["file_uuid"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
            reason: details["rejection_reason"]
                .as_str()
                .map_or(message, str::to_owned),
        },
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
        },
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Reserves a batch; entries the API refuses (by index) are reported and the rest retried.
async fn reserve<'a>(
    client: &Client,
    args: &UploadArgs,
    batch: &[&'a LocalFile],
) -> (Vec<(&'a LocalFile, CreatedFile)>, Vec<(String, Outcome)>) {
    let mut pending: Vec<&LocalFile> = batch.to_vec();
    let mut refused = Vec::new();
    loop {
        if pending.is_empty() {
            return (Vec::new(), refused);
        }
        let request = CreateFilesRequest {
            workspace_uuid: args.workspace,
            files: pending
                .iter()
                .map(|f| FileEntry {
                    local_file_path: Some(f.path.display().to_string()),
                    name: Some(f.name.clone()),
                    path: Some(args.path.clone()),
                    labels: Some(args.labels.clone()).filter(|l| !l.is_empty()),
                    size_bytes: Some(f.size),
                    // A multipart file is held to its parts' digests instead.
                    checksum_sha256: f.multipart.is_none().then(|| {
                        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&f.bytes))
                    }),
                    upload_method: f
                        .multipart
                        .as_ref()
                        .map(|_| UploadMethod::Multipart.to_string()),
                    part_size_bytes: f.multipart.as_ref().map(|p| p.part_size),
                    // A few parts' digests let the reservation sign their URLs at once;
                    // a long list would only swell a batch of 50 toward the body limit.
                    part_checksums_sha256: f
                        .multipart
                        .as_ref()
                        .filter(|p| p.digests.len() <= DIGESTS_IN_RESERVATION)
                        .map(|p| p.digests.clone()),
                    ..FileEntry::default()
                })
                .collect(),
        };
        match client.create_files(&request).await {
            Ok(created) => return (pending.into_iter().zip(created.files).collect(), refused),
            Err(ClientError::Api {
                details, message, ..
            }) if details["files"].is_array() => {
                let bad: BTreeSet<usize> = details["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| {
                        let index = usize::try_from(f["index"].as_u64()?).ok()?;
                        let reason = f["message"].as_str().unwrap_or(&message).to_owned();
                        let name = pending.get(index)?.name.clone();
                        refused.push((name, Outcome::Failed { reason }));
                        Some(index)
                    })
                    .collect();
                if bad.is_empty() {
                    refused.extend(pending.iter().map(|f| {
                        (
                            f.name.clone(),
                            Outcome::Failed {
                                reason: message.clone(),
                            },
                        )
                    }));
                    return (Vec::new(), refused);
                }
                pending = pending
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !bad.contains(i))
                    .map(|(_, f)| f)
                    .collect();
            }
            Err(e) => {
                refused.extend(pending.iter().map(|f| {
                    (
                        f.name.clone(),
                        Outcome::Failed {
                            reason: e.to_string(),
                        },
                    )
                }));
                return (Vec::new(), refused);
            }
        }
    }
}

/// A file to send: just reserved, or an earlier run's multipart upload.
enum Sent {
    Created(Box<CreatedFile>),
    Resumed {
        id: Uuid,
        missing: Vec<i32>,
        count: i32,
    },
}

/// Remembers a multipart upload under way, so a run after an interruption resumes it.
fn remember(state: &Path, file_uuid: Uuid) {
    let written = state
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::write(
                state,
                serde_json::to_vec(&UploadState { file_uuid }).unwrap_or_default(),
            )
        });
    if let Err(e) = written {
        warn(&format!(
            "could not remember the upload in {}: {e}",
            state.display()
        ));
    }
}

#[allow(clippy::print_stderr)]
fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {line}");
}

/// An earlier run's multipart upload of this very file that is still pending, with the
/// parts the store lacks (or holds under another digest).
async fn resumable(client: &Client, local: &LocalFile) -> Option<Sent> {
    let parts = local.multipart.as_ref()?;
    let state: UploadState = serde_json::from_slice(&std::fs::read(&parts.state).ok()?).ok()?;
    match client.list_parts(state.file_uuid).await {
        Ok(stored) => {
            let mut missing = stored.missing;
            for p in &stored.parts {
                let ours = usize::try_from(p.part_number - 1)
                    .ok()
                    .and_then(|i| parts.digests.get(i));
                if p.checksum_sha256.as_ref().is_some_and(|c| Some(c) != ours) {
                    missing.push(p.part_number);
                }
            }
            missing.sort_unstable();
            Some(Sent::Resumed {
                id: state.file_uuid,
                missing,
                count: stored.part_count,
            })
        }
        // Gone, settled or expired: start over.
        Err(_) => {
            let _ = std::fs::remove_file(&parts.state);
            None
        }
    }
}

/// Sends a reserved (or resumed) file's bytes: its id, and `(sent, count)` parts for a
/// multipart one; or why it could not be sent.
async fn send(
    client: &Client,
    args: &UploadArgs,
    local: &LocalFile,
    file: &Sent,
    bar: &ProgressBar,
    overall: &ProgressBar,
) -> Result<(Uuid, Option<(usize, i32)>), String> {
    let (bar, overall) = (bar.clone(), overall.clone());
    let progress = move |n| {
        bar.inc(n);
        overall.inc(n);
    };
    // The server may put a file in parts that this command meant to PUT (its threshold
    // is lower, or the file is over 5 GiB): the parts are then cut as it says.
    let (id, numbers, signed, count, part_size) = match file {
        Sent::Created(file) => match &file.multipart {
            Some(upload) => (
                file.file_uuid,
                (1..=upload.part_count).collect(),
                upload.parts.clone(),
                upload.part_count,
                upload.part_size_bytes.unsigned_abs(),
            ),
            None => {
                let body = ProgressBody::new(bytes::Bytes::from(local.bytes.clone()), progress);
                client
                    .upload(file, reqwest::Body::wrap(body))
                    .await
                    .map_err(|e| e.to_string())?;
                return Ok((file.file_uuid, None));
            }
        },
        Sent::Resumed { id, missing, count } => {
            // What the store holds already counts as sent.
            let held = u64::try_from(i64::from(*count) - missing.len() as i64).unwrap_or(0);
            progress((held * args.part_size).min(local.size));
            (*id, missing.clone(), Vec::new(), *count, args.part_size)
        }
    };
    let digests = match &local.multipart {
        Some(parts) if parts.part_size == part_size => parts.digests.clone(),
        _ => crate::part_digests(&local.path, part_size)
            .map_err(|e| format!("reading the file: {e}"))?,
    };
    let job = crate::PartsJob {
        file_uuid: id,
        source: &local.path,
        size: local.size,
        part_size,
        digests: &digests,
        numbers,
        signed,
        parallel: usize::from(args.parallel),
        limit_rate: args.limit_rate,
    };
    let sent = client
        .send_parts(job, std::sync::Arc::new(progress))
        .await
        .map_err(|e| e.to_string())?;
    Ok((id, Some((sent, count))))
}

/// Completes sent files, 50 per request; `(sent, count)` parts for a multipart one.
async fn complete_all(
    client: &Client,
    files: &[(Uuid, Option<(usize, i32)>)],
) -> HashMap<Uuid, Outcome> {
    let mut out = HashMap::new();
    for chunk in files.chunks(50) {
        let ids: Vec<Uuid> = chunk.iter().map(|(id, _)| *id).collect();
        match client.complete_many(&ids).await {
            Ok(entries) => {
                for ((id, parts), entry) in chunk.iter().zip(entries) {
                    out.insert(*id, outcome(*id, *parts, entry));
                }
            }
            Err(e) => {
                for (id, _) in chunk {
                    out.insert(
                        *id,
                        Outcome::Failed {
                            reason: e.to_string(),
                        },
                    );
                }
            }
        }
    }
    out
}

/// One file's entry of a batch completion, as the summary reports it.
fn outcome(id: Uuid, parts: Option<(usize, i32)>, entry: CompletedFile) -> Outcome {
    match entry {
        CompletedFile::Ready(done) => Outcome::Ready {
            id: done.file_uuid,
            size: done.size_bytes.unwrap_or_default(),
            parts,
        },
        CompletedFile::Failed(FileFailure { error, .. })
            if error.code == ErrorCode::UploadMismatch =>
        {
            Outcome::Rejected {
                id,
                reason: error.details["rejection_reason"]
                    .as_str()
                    .map_or(error.message, str::to_owned),
            }
        }
        CompletedFile::Failed(FileFailure { error, .. }) => Outcome::Failed {
            reason: format!("{}: {}", error.code, error.message),
        },
    }
}

/// `filegate ls`.
///
/// # Errors
/// When the API refuses the listing.
pub async fn ls(args: LsArgs) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let client = args.client.client()?;
    let mut query = ListQuery {
        workspace_uuid: args.workspace,
        name: args.name,
        path: args.path,
        labels: args.labels,
        status: args.status,
        limit: Some(u32::try_from(args.limit.min(1000)).unwrap_or(1000)),
        cursor: None,
    };
    let mut shown = 0;
    if !args.json {
        say(&format!(
            "{:<8}  {:>10}  {:<36}  {:<40}  LABELS",
            "STATUS", "SIZE", "ID", "PATH"
        ));
    }
    loop {
        let page = client.list(&query).await?;
        for f in &page.files {
            if shown == args.limit {
                return Ok(ExitCode::SUCCESS);
            }
            shown += 1;
            if args.json {
                say(&serde_json::to_string(f)?);
            } else {
                let size = f
                    .size_bytes
                    .map_or_else(|| "-".to_owned(), |s| s.to_string());
                say(&format!(
                    "{:<8}  {:>10}  {:<36}  {:<40}  {}",
                    f.status.as_str(),
                    size,
                    f.file_uuid,
                    format!("{}{}", f.path, f.name),
                    f.labels.join(",")
                ));
            }
        }
        match page.next_cursor {
            Some(c) if shown < args.limit => query.cursor = Some(c),
            _ => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// `filegate rm`: exit status 1 when any deletion failed.
///
/// # Errors
/// When the client cannot be built.
pub async fn rm(args: RmArgs) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let client = args.client.client()?;
    let mut ok = true;
    for id in args.ids {
        match client.delete(id).await {
            Ok(()) => say(&format!("deleted {id}")),
            Err(e) => {
                ok = false;
                say(&format!("failed  {id}  {e}"));
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `filegate usage`.
///
/// # Errors
/// When the API refuses.
pub async fn usage(args: UsageArgs) -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
    let u = args.client.client()?.usage(args.workspace).await?;
    if args.json {
        say(&serde_json::to_string(&u)?);
    } else {
        say(&format!("workspace       {}", u.workspace_uuid));
        say(&format!("quota           {} bytes", u.quota_bytes));
        say(&format!("used            {} bytes", u.used_bytes));
        say(&format!("reserved        {} bytes", u.reserved_bytes));
        say(&format!(
            "files           {} of {} ({} pending of {})",
            u.file_count, u.max_files, u.pending_file_count, u.max_pending_files
        ));
        say(&format!("max file size   {} bytes", u.max_file_bytes));
        say(&format!(
            "allowed types   {}",
            u.allowed_content_types.join(", ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

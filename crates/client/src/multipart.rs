//! Sending a large file in parts: hash it part by part, sign the parts' URLs a window
//! at a time (so no URL has to live long), and PUT the parts in parallel straight from
//! the file, each read when it is sent.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Client, ClientError, PartToSign, PartUrl, ProgressBody};

/// Parts signed per `POST …/parts` while sending.
const WINDOW: usize = 64;

/// Base64 SHA-256 of each `part_size` slice of the file at `path` (one digest for an
/// empty file), read a part at a time.
///
/// # Errors
/// When the file cannot be read.
pub fn part_digests(path: &Path, part_size: u64) -> std::io::Result<Vec<String>> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)?;
    let mut digests = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut hasher = Sha256::new();
        let mut in_part = 0u64;
        while in_part < part_size {
            let want = usize::try_from((part_size - in_part).min(buf.len() as u64)).unwrap_or(0);
            let n = file.read(&mut buf[..want])?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            in_part += n as u64;
        }
        if in_part == 0 && !digests.is_empty() {
            break;
        }
        digests.push(base64::engine::general_purpose::STANDARD.encode(hasher.finalize()));
        if in_part < part_size {
            break;
        }
    }
    Ok(digests)
}

/// What to send of a multipart file.
#[derive(Debug, Clone)]
pub struct PartsJob<'a> {
    pub file_uuid: Uuid,
    pub source: &'a Path,
    pub size: u64,
    pub part_size: u64,
    /// Every part's digest, part 1's first.
    pub digests: &'a [String],
    /// The part numbers to send.
    pub numbers: Vec<i32>,
    /// URLs already signed (by the reservation); the others are signed as needed.
    pub signed: Vec<PartUrl>,
    /// Parts in flight at once.
    pub parallel: usize,
    /// At most this many bytes per second over the whole job.
    pub limit_rate: Option<u64>,
}

impl Client {
    /// Sends the job's parts; `on_bytes` hears of every chunk as it goes. Returns how
    /// many parts were sent.
    ///
    /// # Errors
    /// [`ClientError::Store`] when the store refuses a part, [`ClientError::Api`] when
    /// signing fails.
    pub async fn send_parts(
        &self,
        job: PartsJob<'_>,
        on_bytes: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<usize, ClientError> {
        let mut sent = 0;
        for window in job.numbers.chunks(WINDOW) {
            let unsigned: Vec<PartToSign> = window
                .iter()
                .filter(|n| !job.signed.iter().any(|p| p.part_number == **n))
                .filter_map(|n| {
                    Some(PartToSign {
                        part_number: *n,
                        checksum_sha256: job.digests.get(usize::try_from(*n - 1).ok()?)?.clone(),
                    })
                })
                .collect();
            let mut urls: Vec<PartUrl> = job
                .signed
                .iter()
                .filter(|p| window.contains(&p.part_number))
                .cloned()
                .collect();
            if !unsigned.is_empty() {
                urls.extend(self.sign_parts(job.file_uuid, unsigned).await?.parts);
            }
            let results: Vec<Result<u64, ClientError>> = futures_util::stream::iter(urls)
                .map(|part| {
                    let on_bytes = on_bytes.clone();
                    let job = &job;
                    async move {
                        let bytes =
                            read_part(job.source, job.size, job.part_size, part.part_number)
                                .await
                                .map_err(|e| ClientError::Store {
                                    status: 0,
                                    body: format!("reading part {}: {e}", part.part_number),
                                })?;
                        let len = bytes.len() as u64;
                        if let Some(rate) = job.limit_rate.filter(|r| *r > 0) {
                            // Each of `parallel` parts in flight waits its share of the
                            // rate, so together they stay under it.
                            let per = Duration::from_secs_f64(len as f64 / rate as f64);
                            tokio::time::sleep(
                                per.saturating_mul(u32::try_from(job.parallel).unwrap_or(1)),
                            )
                            .await;
                        }
                        let body = ProgressBody::new(bytes, move |n| on_bytes(n));
                        self.upload_part(&part, reqwest::Body::wrap(body)).await?;
                        Ok(len)
                    }
                })
                .buffer_unordered(job.parallel.max(1))
                .collect()
                .await;
            for r in results {
                r?;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

/// Part `number` of the file (1-based), read from disk.
async fn read_part(
    path: &Path,
    size: u64,
    part_size: u64,
    number: i32,
) -> std::io::Result<bytes::Bytes> {
    let start = u64::try_from(number - 1).unwrap_or(0) * part_size;
    let len = usize::try_from(size.saturating_sub(start).min(part_size)).unwrap_or(0);
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut buf = vec![0u8; len];
        file.read_exact(&mut buf)?;
        Ok(bytes::Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_hashed_in_part_sized_slices() {
        let dir = std::env::temp_dir().join(format!("fg-parts-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("f");
        let bytes: Vec<u8> = (0..25u32).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes).ok();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b));
        let digests = part_digests(&path, 10).ok();
        assert_eq!(
            digests,
            Some(vec![
                b64(&bytes[..10]),
                b64(&bytes[10..20]),
                b64(&bytes[20..])
            ])
        );
        // Whole parts only: no empty digest after the last one.
        std::fs::write(&path, &bytes[..20]).ok();
        assert_eq!(part_digests(&path, 10).ok().map(|d| d.len()), Some(2));
        std::fs::write(&path, b"").ok();
        assert_eq!(part_digests(&path, 10).ok(), Some(vec![b64(b"")]));
        std::fs::remove_dir_all(&dir).ok();
    }
}

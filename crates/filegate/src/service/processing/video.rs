//! The video processor: frames of MP4 and WebM videos as JPEG, at `--video-frame-rate`
//! up to `--video-max-frames`, with ffmpeg; the video's duration, fps, size and codec
//! with ffprobe. Both run as bounded child processes on the downloaded object.

use std::path::Path;

use serde_json::{Value, json};

use super::child::{self, Bounds, ChildError};
use super::{BoxFuture, DerivedFile, Failure, Output, Processor};
use crate::settings::ProcessingSettings;

/// Frames of videos.
#[derive(Debug, Clone)]
pub struct Video {
    ffmpeg: String,
    ffprobe: String,
    rate: f64,
    max_frames: u32,
}

/// The kind of derived file it makes (`GET /v2/files/{file_uuid}/frames` lists them).
pub const FRAME: &str = "frame";

impl Video {
    #[must_use]
    pub fn new(settings: &ProcessingSettings) -> Self {
        Self {
            ffmpeg: settings.ffmpeg.clone(),
            ffprobe: settings.ffprobe.clone(),
            rate: settings.video_frame_rate,
            max_frames: settings.video_max_frames,
        }
    }

    async fn probe(
        &self,
        dir: &Path,
        input: &str,
        format: &str,
        bounds: Bounds,
    ) -> Result<Value, Failure> {
        let out = child::run(
            &self.ffprobe,
            [
                "-v",
                "error",
                "-protocol_whitelist",
                "file",
                "-f",
                format,
                "-print_format",
                "json",
                "-show_entries",
                "format=duration,format_name:stream=codec_name,width,height,avg_frame_rate,r_frame_rate,duration,nb_frames",
                "-select_streams",
                "v:0",
                input,
            ],
            dir,
            bounds,
        )
        .await
        .map_err(failure)?;
        let probed: Value = serde_json::from_slice(&out)
            .map_err(|e| Failure::Input(format!("ffprobe's answer is not JSON: {e}")))?;
        metadata(&probed)
    }
}

impl Processor for Video {
    fn name(&self) -> &'static str {
        "video"
    }

    fn content_types(&self) -> &'static [&'static str] {
        &["video/mp4", "video/webm"]
    }

    fn check<'a>(&'a self, dir: &'a Path, bounds: Bounds) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for tool in [&self.ffmpeg, &self.ffprobe] {
                child::run(tool, ["-version"], dir, bounds)
                    .await
                    .map_err(|e| format!("the video processor needs {tool}: {e}"))?;
            }
            Ok(())
        })
    }

    fn process<'a>(
        &'a self,
        dir: &'a Path,
        input: &'a str,
        content_type: &'a str,
        bounds: Bounds,
    ) -> BoxFuture<'a, Result<Output, Failure>> {
        Box::pin(async move {
            let format = demuxer(content_type)?;
            let mut metadata = self.probe(dir, input, format, bounds).await?;
            let frames = dir.join("frames");
            tokio::fs::create_dir(&frames).await.map_err(|e| {
                Failure::Transient(format!("could not make a frames directory: {}", e.kind()))
            })?;
            // At the rate, and no larger than 1920×1920 (the aspect kept): a hostile
            // video's huge frames cost neither the disk nor the quota.
            let filters = format!(
                "fps={},scale=w='min(iw,{MAX_SIDE})':h='min(ih,{MAX_SIDE})':force_original_aspect_ratio=decrease",
                self.rate
            );
            let max = self.max_frames.to_string();
            child::run(
                &self.ffmpeg,
                [
                    "-nostdin",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-protocol_whitelist",
                    "file",
                    "-f",
                    format,
                    "-i",
                    input,
                    "-map",
                    "0:v:0",
                    "-an",
                    "-sn",
                    "-dn",
                    "-vf",
                    &filters,
                    "-frames:v",
                    &max,
                    "-q:v",
                    "3",
                    "-f",
                    "image2",
                    "-start_number",
                    "1",
                    "frames/%06d.jpg",
                ],
                dir,
                bounds,
            )
            .await
            .map_err(failure)?;
            let mut derived = Vec::new();
            let mut entries = tokio::fs::read_dir(&frames).await.map_err(|e| {
                Failure::Transient(format!("could not list the frames: {}", e.kind()))
            })?;
            while let Some(entry) = entries.next_entry().await.map_err(|e| {
                Failure::Transient(format!("could not list the frames: {}", e.kind()))
            })? {
                let name = entry.file_name();
                let Some(seq) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".jpg"))
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                derived.push(DerivedFile {
                    kind: FRAME,
                    seq,
                    path: entry.path(),
                    content_type: "image/jpeg",
                    extension: "jpg",
                });
            }
            derived.sort_by_key(|d| d.seq);
            if derived.is_empty() {
                return Err(Failure::Input(
                    "ffmpeg decoded no frame from the video".to_owned(),
                ));
            }
            metadata["frame_count"] = json!(derived.len());
            metadata["frame_rate"] = json!(self.rate);
            Ok(Output { metadata, derived })
        })
    }
}

/// The longest side of a frame, in pixels.
const MAX_SIDE: u32 = 1920;

/// The demuxer for a type: named, never guessed, so a file that says it is an MP4 is
/// read as one (not as a playlist or a concatenation script naming other files).
fn demuxer(content_type: &str) -> Result<&'static str, Failure> {
    match content_type {
        "video/mp4" => Ok("mov"),
        "video/webm" => Ok("matroska"),
        other => Err(Failure::Input(format!(
            "the video processor does not read {other}"
        ))),
    }
}

/// A tool that ran and failed failed on the video (not retried), unless the host ran
/// out of disk; one that could not start is the host's failure (retried).
fn failure(e: ChildError) -> Failure {
    let host = match &e {
        ChildError::Failed { diagnostics, .. } => diagnostics.contains("No space left on device"),
        _ => !e.is_input_failure(),
    };
    if host {
        Failure::Transient(e.to_string())
    } else {
        Failure::Input(e.to_string())
    }
}

/// `video_metadata` from ffprobe's answer: the first video stream's codec, size and
/// frame rate, and the duration (the stream's, else the container's).
fn metadata(probed: &Value) -> Result<Value, Failure> {
    let Some(stream) = probed["streams"].as_array().and_then(|s| s.first()) else {
        return Err(Failure::Input("the file has no video stream".to_owned()));
    };
    let number = |v: &Value| -> Option<f64> {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse::<f64>().ok()))
            .filter(|n| n.is_finite())
    };
    let duration = number(&stream["duration"]).or_else(|| number(&probed["format"]["duration"]));
    let fps = ratio(&stream["avg_frame_rate"]).or_else(|| ratio(&stream["r_frame_rate"]));
    Ok(json!({
        "duration_seconds": duration,
        "fps": fps,
        "width": stream["width"].as_u64(),
        "height": stream["height"].as_u64(),
        "codec": stream["codec_name"].as_str(),
        "container": probed["format"]["format_name"].as_str(),
    }))
}

/// A rate as ffprobe writes it (`30000/1001`), as a number; `None` for `0/0`.
fn ratio(v: &Value) -> Option<f64> {
    let (n, d) = v.as_str()?.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d != 0.0 && n > 0.0).then(|| (n / d * 1000.0).round() / 1000.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_reads_ffprobes_answer() {
        let probed = json!({
            "streams": [{ "codec_name": "h264", "width": 320, "height": 240,
                          "avg_frame_rate": "30000/1001", "r_frame_rate": "30/1", "duration": "3.000000" }],
            "format": { "duration": "3.05", "format_name": "mov,mp4,m4a,3gp,3g2,mj2" }
        });
        let m = metadata(&probed).unwrap();
        assert_eq!(m["codec"], "h264");
        assert_eq!(m["width"], 320);
        assert_eq!(m["height"], 240);
        assert_eq!(m["fps"], 29.97);
        assert_eq!(m["duration_seconds"], 3.0);
    }

    #[test]
    fn the_containers_duration_stands_in_and_zero_rates_are_unknown() {
        let probed = json!({
            "streams": [{ "codec_name": "vp9", "width": 64, "height": 48, "avg_frame_rate": "0/0", "r_frame_rate": "25/1" }],
            "format": { "duration": "1.5" }
        });
        let m = metadata(&probed).unwrap();
        assert_eq!(m["duration_seconds"], 1.5);
        assert_eq!(m["fps"], 25.0);
        assert_eq!(ratio(&json!("0/0")), None);
    }

    #[test]
    fn a_file_without_a_video_stream_fails_on_its_input() {
        let e = metadata(&json!({ "streams": [], "format": {} })).unwrap_err();
        assert!(matches!(e, Failure::Input(m) if m.contains("no video stream")));
    }
}

//! Real videos for the processing tests, made by ffmpeg (from Debian's package, which
//! `scripts/test` installs), and what a test reads back of a frame.

/// The file ffmpeg writes with `args` (inputs and options) to `out.{ext}`.
///
/// # Panics
/// When ffmpeg is missing or fails.
#[must_use]
pub fn ffmpeg(args: &[&str], ext: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("scratch directory");
    let out = dir.path().join(format!("out.{ext}"));
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg (scripts/test installs it)");
    assert!(status.success(), "ffmpeg {args:?} failed");
    std::fs::read(&out).expect("ffmpeg's output")
}

/// A 3-second 320×240 MP4 at 10 fps (H.264), as the example makes it.
#[must_use]
pub fn short_mp4() -> Vec<u8> {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=3:size=320x240:rate=10",
            "-pix_fmt",
            "yuv420p",
        ],
        "mp4",
    )
}

/// A 2-second 160×120 WebM (VP9).
#[must_use]
pub fn short_webm() -> Vec<u8> {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=160x120:rate=10",
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
        ],
        "webm",
    )
}

/// A 20-second 1280×720 MP4 at 25 fps (MPEG-4 part 2, quick to make): decoding it all
/// takes a few hundred milliseconds and a few hundred MiB of address space.
#[must_use]
pub fn long_720p_mp4() -> Vec<u8> {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=20:size=1280x720:rate=25",
            "-c:v",
            "mpeg4",
            "-q:v",
            "20",
        ],
        "mp4",
    )
}

/// The width and height a JPEG's start-of-frame marker declares; `None` when the bytes
/// are not a JPEG with one.
#[must_use]
pub fn jpeg_size(bytes: &[u8]) -> Option<(u16, u16)> {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return None;
    }
    let mut i = 2;
    while i + 9 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]);
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

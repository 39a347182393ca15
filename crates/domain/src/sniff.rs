//! Do an object's first bytes fit its declared type? A renamed executable is not a PDF,
//! a spreadsheet is not a DOCX, and text that does not parse is not JSON. Magic numbers
//! come from the `infer` crate where its matcher is strict enough, tightened where it
//! is not (PNG, GIF, WebP and WAV are checked to their chunk headers); OOXML documents
//! are told apart by their parts; JSON is parsed as far as it was read.

use serde::de::IgnoredAny;

use crate::ContentType;

/// How many leading bytes completion reads to sniff most types.
pub const SNIFF_BYTES: usize = 8 * 1024;
/// OOXML documents name their parts in the ZIP's local headers; writers put thumbnails
/// and properties before the document parts, so these read further.
const OOXML_SNIFF_BYTES: usize = 64 * 1024;

/// Which OOXML application a ZIP's parts belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ooxml {
    Word,
    Excel,
    PowerPoint,
}

impl ContentType {
    /// How many leading bytes [`ContentType::sniff`] wants.
    #[must_use]
    pub fn sniff_len(self) -> usize {
        match self {
            Self::Docx | Self::Xlsx | Self::Pptx => OOXML_SNIFF_BYTES,
            _ => SNIFF_BYTES,
        }
    }

    /// Checks the first bytes of an object (up to [`ContentType::sniff_len`]) against
    /// this type. `whole` says the prefix is the entire object, so nothing may be cut.
    ///
    /// # Errors
    /// A sentence saying what the bytes look like instead.
    pub fn sniff(self, prefix: &[u8], whole: bool) -> Result<(), String> {
        let expected = article(self);
        let refuse = || match infer::get(prefix).map(|t| t.mime_type()) {
            Some(mime) if mime != self.mime() => {
                Err(format!("the content is {mime}, not {expected}"))
            }
            _ => Err(format!("the content does not look like {expected}")),
        };
        let ok = |fits: bool| if fits { Ok(()) } else { refuse() };
        match self {
            Self::Pdf => ok(prefix.starts_with(b"%PDF-")),
            Self::Docx => ooxml(prefix, Ooxml::Word, &expected),
            Self::Xlsx => ooxml(prefix, Ooxml::Excel, &expected),
            Self::Pptx => ooxml(prefix, Ooxml::PowerPoint, &expected),
            Self::Png => {
                ok(prefix.starts_with(b"\x89PNG\r\n\x1a\n") && prefix.get(12..16) == Some(b"IHDR"))
            }
            Self::Jpeg => ok(infer::image::is_jpeg(prefix)),
            Self::Gif => ok(prefix.starts_with(b"GIF87a") || prefix.starts_with(b"GIF89a")),
            Self::Webp => ok(riff(prefix, b"WEBP")
                && matches!(prefix.get(12..16), Some(b"VP8 " | b"VP8L" | b"VP8X"))),
            Self::Wav => ok(riff(prefix, b"WAVE") && infer::audio::is_wav(prefix)),
            Self::Mp3 => ok(is_mp3(prefix)),
            Self::Mp4 => ok(infer::video::is_mp4(prefix) || is_m4v(prefix)),
            Self::Webm => ok(infer::video::is_webm(prefix)),
            Self::Html | Self::Txt | Self::Markdown | Self::Csv | Self::Tsv => {
                text(prefix, whole).map(|_| ())
            }
            Self::Json => {
                let s = text(prefix, whole)?;
                json_prefix(s.trim_start_matches('\u{feff}'), whole)
                    .map_err(|e| format!("the content is not JSON: {e}"))
            }
            Self::Jsonl => {
                let s = text(prefix, whole)?;
                json_lines(s.trim_start_matches('\u{feff}'), whole)
            }
        }
    }
}

/// "a PDF document", "an XLSX workbook": the type as messages name it.
fn article(ty: ContentType) -> String {
    let what = match ty {
        ContentType::Pdf | ContentType::Docx => "document",
        ContentType::Xlsx => "workbook",
        ContentType::Pptx => "presentation",
        ContentType::Png | ContentType::Jpeg | ContentType::Gif | ContentType::Webp => "image",
        ContentType::Mp3 | ContentType::Wav => "audio file",
        ContentType::Mp4 | ContentType::Webm => "video",
        ContentType::Json | ContentType::Jsonl => "document",
        ContentType::Html | ContentType::Markdown | ContentType::Csv | ContentType::Tsv => "text",
        ContentType::Txt => return "text".to_owned(),
    };
    let label = ty.label();
    let a = if label.starts_with(['A', 'E', 'I', 'O', 'U', 'H', 'M', 'X']) {
        "an"
    } else {
        "a"
    };
    // "an HTML text", "an MP3 audio file", "an XLSX workbook", "a PNG image"
    format!("{a} {label} {what}")
}

/// `RIFF<size><kind>`.
fn riff(prefix: &[u8], kind: &[u8; 4]) -> bool {
    prefix.starts_with(b"RIFF") && prefix.get(8..12) == Some(kind.as_slice())
}

/// An ID3v2 tag (`ID3` and a major version 2–4), or an MPEG-1/2 layer III frame header.
fn is_mp3(prefix: &[u8]) -> bool {
    match prefix {
        [b'I', b'D', b'3', major, ..] => (2..=4).contains(major),
        // Sync bits, MPEG-1, -2 or -2.5 (not the reserved version), layer III (with or
        // without CRC), a bitrate index other than "free" or "bad", a valid sample rate.
        [0xff, second, third, ..] => {
            second & 0xe0 == 0xe0
                && (second >> 3) & 0x03 != 0x01
                && (second >> 1) & 0x03 == 0x01
                && !matches!(third >> 4, 0x0 | 0xf)
                && (third >> 2) & 0x03 != 0x03
        }
        _ => false,
    }
}

/// An ISO BMFF `ftyp` box of Apple's M4V brands, which `infer` does not list.
fn is_m4v(prefix: &[u8]) -> bool {
    prefix.get(4..8) == Some(b"ftyp")
        && matches!(prefix.get(8..12), Some(b"M4V " | b"M4VH" | b"M4VP"))
}

/// UTF-8 text without NUL. A multi-byte character cut where the read ended is still
/// text (and dropped from what is returned), unless the prefix is the whole object.
fn text(prefix: &[u8], whole: bool) -> Result<&str, String> {
    let not_text = |why: &str| match infer::get(prefix).map(|t| t.mime_type()) {
        Some(mime) => format!("the content is {mime}, not text"),
        None => why.to_owned(),
    };
    if prefix.contains(&0) {
        return Err(not_text(
            "the content contains NUL bytes, so it is not text",
        ));
    }
    match std::str::from_utf8(prefix) {
        Ok(s) => Ok(s),
        Err(e) if e.error_len().is_none() && !whole => {
            // Only the cut character is missing: the rest was valid.
            Ok(std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => Err(not_text("the content is not valid UTF-8 text")),
    }
}

/// One JSON value: all of it when `whole`, else valid as far as it goes.
fn json_prefix(s: &str, whole: bool) -> Result<(), serde_json::Error> {
    match serde_json::from_str::<IgnoredAny>(s) {
        Err(e) if e.is_eof() && !whole && !s.trim().is_empty() => Ok(()),
        other => other.map(|_| ()),
    }
}

/// One JSON value per non-blank line; when the prefix is not the whole object its last
/// line may be cut.
fn json_lines(s: &str, whole: bool) -> Result<(), String> {
    let lines: Vec<&str> = s.split('\n').collect();
    let mut values = 0;
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let last = i + 1 == lines.len();
        json_prefix(line, whole || !last)
            .map_err(|e| format!("line {} is not JSON: {e}", i + 1))?;
        values += 1;
    }
    if values == 0 && whole {
        return Err("the content holds no JSON line".to_owned());
    }
    Ok(())
}

/// A ZIP whose OOXML document parts (`word/`, `xl/`, `ppt/`) belong to `want` only.
/// Part names are read from the local file headers in the prefix.
fn ooxml(prefix: &[u8], want: Ooxml, expected: &str) -> Result<(), String> {
    const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
    if !prefix.starts_with(LOCAL_HEADER) {
        return Err(match infer::get(prefix).map(|t| t.mime_type()) {
            Some(mime) => format!("the content is {mime}, not {expected}"),
            None => format!("the content does not look like {expected}"),
        });
    }
    let mut found: Vec<Ooxml> = Vec::new();
    let mut is_ooxml = false;
    let mut at = 0;
    while let Some(offset) = find(&prefix[at..], LOCAL_HEADER) {
        let header = at + offset;
        at = header + LOCAL_HEADER.len();
        let Some(len) = prefix.get(header + 26..header + 28) else {
            break;
        };
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let Some(name) = prefix.get(header + 30..header + 30 + len) else {
            break;
        };
        let kind = if name.starts_with(b"word/") {
            Some(Ooxml::Word)
        } else if name.starts_with(b"xl/") {
            Some(Ooxml::Excel)
        } else if name.starts_with(b"ppt/") {
            Some(Ooxml::PowerPoint)
        } else {
            None
        };
        is_ooxml |= kind.is_some() || name == b"[Content_Types].xml";
        if let Some(kind) = kind
            && !found.contains(&kind)
        {
            found.push(kind);
        }
    }
    let name = |k: Ooxml| match k {
        Ooxml::Word => "a DOCX document",
        Ooxml::Excel => "an XLSX workbook",
        Ooxml::PowerPoint => "a PPTX presentation",
    };
    match found.as_slice() {
        [only] if *only == want => Ok(()),
        [only] => Err(format!("the content is {}, not {expected}", name(*only))),
        [] if is_ooxml => Err(format!(
            "the content is an OOXML package without the parts of {expected}"
        )),
        [] => Err(format!("the content is application/zip, not {expected}")),
        _ => Err(format!(
            "the content mixes the parts of several OOXML documents, so it is not only {expected}"
        )),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ZIP local file header naming `name` (enough for sniffing).
    fn zip_entry(name: &str) -> Vec<u8> {
        let mut v = b"PK\x03\x04".to_vec();
        v.extend_from_slice(&[
            20, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        v.extend_from_slice(&u16::try_from(name.len()).unwrap_or_default().to_le_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(name.as_bytes());
        v
    }

    fn zip(names: &[&str]) -> Vec<u8> {
        names.iter().flat_map(|n| zip_entry(n)).collect()
    }

    #[test]
    fn pdfs_start_with_the_pdf_magic() {
        assert!(ContentType::Pdf.sniff(b"%PDF-1.7\n...", true).is_ok());
        assert!(
            ContentType::Pdf
                .sniff(b"\x7fELF\x02\x01\x01", true)
                .is_err()
        );
        assert!(ContentType::Pdf.sniff(b"MZ\x90\x00", true).is_err());
        assert!(ContentType::Pdf.sniff(b"", true).is_err());
    }

    #[test]
    fn ooxml_documents_are_each_only_themselves() {
        let docx = zip(&["[Content_Types].xml", "_rels/.rels", "word/document.xml"]);
        let xlsx = zip(&["[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"]);
        let pptx = zip(&["[Content_Types].xml", "ppt/presentation.xml"]);
        assert!(ContentType::Docx.sniff(&docx, true).is_ok());
        assert!(ContentType::Xlsx.sniff(&xlsx, true).is_ok());
        assert!(ContentType::Pptx.sniff(&pptx, true).is_ok());
        let err = ContentType::Docx
            .sniff(&xlsx, true)
            .err()
            .unwrap_or_default();
        assert!(err.contains("XLSX workbook"), "{err}");
        assert!(ContentType::Xlsx.sniff(&pptx, true).is_err());
        let both = zip(&[
            "[Content_Types].xml",
            "word/document.xml",
            "xl/workbook.xml",
        ]);
        assert!(ContentType::Docx.sniff(&both, true).is_err());
        assert!(ContentType::Docx.sniff(&zip(&["photo.jpg"]), true).is_err());
        assert!(
            ContentType::Docx
                .sniff(&zip(&["[Content_Types].xml"]), true)
                .is_err()
        );
        assert!(
            ContentType::Docx
                .sniff(&[0x13, 0x37, 0x00, 0xff, 0x42], true)
                .is_err()
        );
    }

    #[test]
    fn text_types_are_utf8_without_nul() {
        for ty in [
            ContentType::Txt,
            ContentType::Html,
            ContentType::Markdown,
            ContentType::Csv,
            ContentType::Tsv,
        ] {
            assert!(ty.sniff("héllo <b>".as_bytes(), true).is_ok());
            assert!(ty.sniff(b"", true).is_ok());
            assert!(ty.sniff(b"a\0b", true).is_err());
            assert!(ty.sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", true).is_err());
            assert!(ty.sniff(b"\xff\xfe\xfd", true).is_err());
        }
        let err = ContentType::Txt
            .sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", true)
            .err()
            .unwrap_or_default();
        assert!(err.contains("image/png"), "{err}");
    }

    #[test]
    fn a_character_cut_by_the_prefix_end_is_still_text() {
        let mut prefix = vec![b'a'; SNIFF_BYTES - 1];
        prefix.push(0xc3); // first byte of 'é'
        assert!(ContentType::Txt.sniff(&prefix, false).is_ok());
        // The same cut in a whole object is not text.
        assert!(ContentType::Txt.sniff(&[b'a', 0xc3], true).is_err());
    }

    #[test]
    fn json_parses_as_far_as_it_was_read() {
        assert!(ContentType::Json.sniff(br#"{"a": [1, 2]}"#, true).is_ok());
        assert!(
            ContentType::Json
                .sniff("\u{feff}[1]".as_bytes(), true)
                .is_ok()
        );
        // Cut where the read ended: valid so far.
        assert!(ContentType::Json.sniff(br#"{"a": [1, 2"#, false).is_ok());
        // The same bytes as the whole object are not JSON.
        assert!(ContentType::Json.sniff(br#"{"a": [1, 2"#, true).is_err());
        let err = ContentType::Json
            .sniff(b"name,score\nx,1\n", false)
            .err()
            .unwrap_or_default();
        assert!(err.contains("not JSON"), "{err}");
        assert!(ContentType::Json.sniff(b"", true).is_err());
        assert!(ContentType::Json.sniff(b"{} {}", true).is_err());
    }

    #[test]
    fn json_lines_parse_line_by_line() {
        assert!(
            ContentType::Jsonl
                .sniff(b"{\"a\":1}\n{\"a\":2}\n", true)
                .is_ok()
        );
        assert!(
            ContentType::Jsonl
                .sniff(b"{\"a\":1}\r\n\n[2]", true)
                .is_ok()
        );
        assert!(
            ContentType::Jsonl
                .sniff(b"{\"a\":1}\n{\"a\":", false)
                .is_ok()
        );
        assert!(
            ContentType::Jsonl
                .sniff(b"{\"a\":1}\n{\"a\":", true)
                .is_err()
        );
        let err = ContentType::Jsonl
            .sniff(b"{\"a\":1}\nnope\n{}", true)
            .err()
            .unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
        assert!(ContentType::Jsonl.sniff(b"\n\n", true).is_err());
    }

    #[test]
    fn images_audio_and_video_are_checked_to_their_headers() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
        assert!(ContentType::Png.sniff(png, true).is_ok());
        let gif = b"GIF89a\x01\0\x01\0";
        assert!(ContentType::Gif.sniff(gif, true).is_ok());
        let err = ContentType::Png.sniff(gif, true).err().unwrap_or_default();
        assert!(err.contains("image/gif"), "{err}");
        assert!(ContentType::Gif.sniff(b"GIF", true).is_err());
        assert!(
            ContentType::Webp
                .sniff(b"RIFF\x10\0\0\0WEBPVP8 \0\0", true)
                .is_ok()
        );
        assert!(
            ContentType::Webp
                .sniff(b"RIFF\x10\0\0\0WAVEfmt \0\0", true)
                .is_err()
        );
        assert!(
            ContentType::Wav
                .sniff(b"RIFF\x10\0\0\0WAVEfmt \0\0", true)
                .is_ok()
        );
        assert!(
            ContentType::Jpeg
                .sniff(b"\xff\xd8\xff\xe0\0\x10JFIF", true)
                .is_ok()
        );
        assert!(ContentType::Mp3.sniff(b"ID3\x04\0\0\0\0\0\0", true).is_ok());
        assert!(
            ContentType::Mp3
                .sniff(b"\xff\xfb\x90\x64\0\0", true)
                .is_ok()
        );
        assert!(ContentType::Mp3.sniff(b"\xff\xd8\xff\xe0", true).is_err());
        // With CRC, and MPEG-2.5.
        assert!(
            ContentType::Mp3
                .sniff(b"\xff\xfa\x90\x64\0\0", true)
                .is_ok()
        );
        assert!(
            ContentType::Mp3
                .sniff(b"\xff\xe3\x50\x64\0\0", true)
                .is_ok()
        );
        // The reserved MPEG version, and layer II.
        assert!(ContentType::Mp3.sniff(b"\xff\xeb\x90\x64", true).is_err());
        assert!(ContentType::Mp3.sniff(b"\xff\xfd\x90\x64", true).is_err());
        assert!(
            ContentType::Mp4
                .sniff(b"\0\0\0\x18ftypM4V \0\0\x02\0", true)
                .is_ok()
        );
        assert!(
            ContentType::Mp4
                .sniff(b"\0\0\0\x18ftypisom\0\0\x02\0", true)
                .is_ok()
        );
        assert!(
            ContentType::Mp4
                .sniff(b"\0\0\0\x18ftypqt  \0\0\x02\0", true)
                .is_err()
        );
        let mut webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm".to_vec();
        webm.resize(300, 0);
        assert!(ContentType::Webm.sniff(&webm, true).is_ok());
        assert!(
            ContentType::Webm
                .sniff(b"\x7fELF\x02\x01\x01", true)
                .is_err()
        );
    }
}

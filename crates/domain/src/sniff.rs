//! Does an object's first bytes fit its declared type? A renamed executable is not a
//! PDF. Magic numbers come from the `infer` crate; text is checked as UTF-8 without NUL.

use crate::ContentType;

/// How many leading bytes completion reads to sniff a type.
pub const SNIFF_BYTES: usize = 8 * 1024;

impl ContentType {
    /// Checks the first bytes of an object (up to [`SNIFF_BYTES`]) against this type.
    ///
    /// # Errors
    /// A sentence saying what the bytes look like instead.
    pub fn sniff(self, prefix: &[u8]) -> Result<(), String> {
        let found = || infer::get(prefix).map(|t| t.mime_type());
        let refuse = |expected: &str| match found() {
            Some(mime) => Err(format!("the content is {mime}, not {expected}")),
            None => Err(format!("the content does not look like {expected}")),
        };
        match self {
            Self::Pdf => {
                if prefix.starts_with(b"%PDF-") {
                    Ok(())
                } else {
                    refuse("a PDF document")
                }
            }
            Self::Docx => {
                if infer::doc::is_docx(prefix) || is_ooxml_word(prefix) {
                    Ok(())
                } else {
                    refuse("a DOCX document")
                }
            }
            Self::Html | Self::Txt | Self::Markdown => {
                if prefix.contains(&0) {
                    return match found() {
                        Some(mime) => Err(format!("the content is {mime}, not text")),
                        None => Err("the content contains NUL bytes, so it is not text".to_owned()),
                    };
                }
                match std::str::from_utf8(prefix) {
                    Ok(_) => Ok(()),
                    // A multi-byte character cut by the end of the prefix is still text.
                    Err(e) if e.error_len().is_none() && prefix.len() >= SNIFF_BYTES => Ok(()),
                    Err(_) => match found() {
                        Some(mime) => Err(format!("the content is {mime}, not text")),
                        None => Err("the content is not valid UTF-8 text".to_owned()),
                    },
                }
            }
        }
    }
}

/// A ZIP whose first local file entry is an OOXML part (`[Content_Types].xml`, `_rels/`,
/// `word/` or `docProps/`). `infer` only knows the layout Word itself writes; other
/// writers order the parts differently.
fn is_ooxml_word(prefix: &[u8]) -> bool {
    const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
    if !prefix.starts_with(LOCAL_HEADER) || prefix.len() < 30 {
        return false;
    }
    let name_len = usize::from(u16::from_le_bytes([prefix[26], prefix[27]]));
    let Some(name) = prefix.get(30..30 + name_len) else {
        return false;
    };
    [
        b"[Content_Types].xml".as_slice(),
        b"_rels/",
        b"word/",
        b"docProps/",
    ]
    .iter()
    .any(|p| name.starts_with(p))
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

    #[test]
    fn pdfs_start_with_the_pdf_magic() {
        assert!(ContentType::Pdf.sniff(b"%PDF-1.7\n...").is_ok());
        assert!(ContentType::Pdf.sniff(b"\x7fELF\x02\x01\x01").is_err());
        assert!(ContentType::Pdf.sniff(b"MZ\x90\x00").is_err());
        assert!(ContentType::Pdf.sniff(b"").is_err());
    }

    #[test]
    fn docx_is_a_zip_of_ooxml_parts() {
        assert!(
            ContentType::Docx
                .sniff(&zip_entry("[Content_Types].xml"))
                .is_ok()
        );
        assert!(
            ContentType::Docx
                .sniff(&zip_entry("word/document.xml"))
                .is_ok()
        );
        assert!(ContentType::Docx.sniff(&zip_entry("photo.jpg")).is_err());
        assert!(
            ContentType::Docx
                .sniff(&[0x13, 0x37, 0x00, 0xff, 0x42])
                .is_err()
        );
    }

    #[test]
    fn text_types_are_utf8_without_nul() {
        for ty in [ContentType::Txt, ContentType::Html, ContentType::Markdown] {
            assert!(ty.sniff("héllo <b>".as_bytes()).is_ok());
            assert!(ty.sniff(b"").is_ok());
            assert!(ty.sniff(b"a\0b").is_err());
            assert!(ty.sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").is_err());
            assert!(ty.sniff(b"\xff\xfe\xfd").is_err());
        }
        let err = ContentType::Txt
            .sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
            .err()
            .unwrap_or_default();
        assert!(err.contains("image/png"), "{err}");
    }

    #[test]
    fn a_character_cut_by_the_prefix_end_is_still_text() {
        let mut prefix = vec![b'a'; SNIFF_BYTES - 1];
        prefix.push(0xc3); // first byte of 'é'
        assert!(ContentType::Txt.sniff(&prefix).is_ok());
        // The same cut in a short (whole) object is not text.
        assert!(ContentType::Txt.sniff(&[b'a', 0xc3]).is_err());
    }
}

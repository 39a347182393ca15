use std::collections::HashMap;

use crate::multipart::UploadRequest;
use crate::{
    Checksum, ContentType, FileName, Labels, LibraryPath, Limits, MAX_FILES_PER_REQUEST, PublicUrl,
    RuleCode, RuleViolation, has_control, names_an_executable,
};

/// Why a request's batch of entries was refused; nothing of it is reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Not 1 to [`MAX_FILES_PER_REQUEST`] entries (how many there were).
    Size(usize),
    /// These entries (by index, in order) broke a rule.
    Entries(Vec<(usize, RuleViolation)>),
}

impl BatchError {
    /// The batch-size rule alone, for checking it before anything is read.
    ///
    /// # Errors
    /// [`BatchError::Size`] outside 1 to [`MAX_FILES_PER_REQUEST`].
    pub fn check_size(entries: usize) -> Result<(), Self> {
        if (1..=MAX_FILES_PER_REQUEST).contains(&entries) {
            Ok(())
        } else {
            Err(Self::Size(entries))
        }
    }
}

/// The longest `local_file_path` echoed back to clients, in bytes.
pub const MAX_LOCAL_PATH_BYTES: usize = 4096;

/// One requested upload as a client sends it, before any rule is checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileInput<'a> {
    pub local_file_path: Option<&'a str>,
    pub name: Option<&'a str>,
    pub path: Option<&'a str>,
    pub labels: Option<&'a [String]>,
    pub public_url: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub size_bytes: Option<u64>,
    pub checksum_sha256: Option<&'a str>,
    /// `PUT`, `MULTIPART`, or absent (the server decides by size).
    pub upload_method: Option<&'a str>,
    pub part_size_bytes: Option<u64>,
    pub part_checksums_sha256: Option<&'a [String]>,
}

/// One requested upload with every rule checked against a workspace's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub local_file_path: Option<String>,
    pub name: FileName,
    pub path: LibraryPath,
    pub labels: Labels,
    pub public_url: Option<PublicUrl>,
    pub content_type: ContentType,
    pub size_bytes: Option<i64>,
    pub checksum: Option<Checksum>,
    /// How the client asked to send the bytes.
    pub upload: UploadRequest,
}

fn executable(name: &FileName) -> RuleViolation {
    RuleViolation::metadata(format!(
        "the name {:?} is an executable's or a script's; such files are not accepted",
        name.as_str()
    ))
}

fn check_extension(name: &FileName, ty: ContentType) -> Result<(), RuleViolation> {
    match ContentType::from_file_name(name.as_str()) {
        Some(implied) if implied != ty => Err(RuleViolation::metadata(format!(
            "the name {:?} says {}, but the file is {}",
            name.as_str(),
            implied.label(),
            ty.mime()
        ))),
        _ => Ok(()),
    }
}

/// A name a file of type `ty` may carry: not an executable's or a script's, and not one
/// whose extension names another registered type (`notes.pdf` for text). Creation and
/// renames both hold names to this.
///
/// # Errors
/// `invalid_metadata` saying which rule the name breaks.
pub fn check_name_for(name: &FileName, ty: ContentType) -> Result<(), RuleViolation> {
    if names_an_executable(name.as_str()) {
        return Err(executable(name));
    }
    check_extension(name, ty)
}

impl FileSpec {
    /// Checks a request's entries, all or nothing: 1 to [`MAX_FILES_PER_REQUEST`] of
    /// them, each by [`Self::parse`], and, where the workspace wants unique names, no
    /// two with the same name and path.
    ///
    /// # Errors
    /// The size rule, else every entry that broke a rule (the first rule each broke).
    pub fn parse_batch(inputs: &[FileInput<'_>], limits: &Limits) -> Result<Vec<Self>, BatchError> {
        BatchError::check_size(inputs.len())?;
        let mut specs = Vec::with_capacity(inputs.len());
        let mut failures = Vec::new();
        let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
        let mut parsed = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.iter().enumerate() {
            match Self::parse(*input, limits) {
                Ok(spec) => parsed.push((index, spec)),
                Err(v) => failures.push((index, v)),
            }
        }
        for (index, spec) in &parsed {
            if let Some(first) = seen
                .insert((spec.path.as_str(), spec.name.as_str()), *index)
                .filter(|_| limits.unique_names)
            {
                failures.push((
                    *index,
                    RuleViolation {
                        code: RuleCode::DuplicateFile,
                        message: format!("the same name and path as file {first} of this request"),
                    },
                ));
            }
        }
        if !failures.is_empty() {
            failures.sort_by_key(|(index, _)| *index);
            return Err(BatchError::Entries(failures));
        }
        specs.extend(parsed.into_iter().map(|(_, spec)| spec));
        Ok(specs)
    }

    /// Checks one entry: metadata first, then its type, then its size.
    ///
    /// # Errors
    /// The first rule the entry breaks.
    pub fn parse(input: FileInput<'_>, limits: &Limits) -> Result<Self, RuleViolation> {
        let local_file_path = match input.local_file_path {
            Some(p) if p.len() > MAX_LOCAL_PATH_BYTES => {
                return Err(RuleViolation::metadata(format!(
                    "local_file_path must be at most {MAX_LOCAL_PATH_BYTES} bytes long"
                )));
            }
            Some(p) if has_control(p) => {
                return Err(RuleViolation::metadata(
                    "local_file_path must not contain control characters",
                ));
            }
            other => other,
        };
        // The type is judged before the name: a caller sending `evil.exe` as
        // `application/x-msdownload` first needs to hear that the type is unsupported.
        let declared = input.content_type.map(ContentType::parse).transpose()?;
        let name = match (input.name, local_file_path) {
            (Some(name), _) => FileName::parse(name)?,
            (None, Some(local)) => FileName::from_local_path(local)?,
            (None, None) => {
                return Err(RuleViolation::metadata(
                    "one of name or local_file_path is required",
                ));
            }
        };
        let content_type = match declared {
            Some(t) => t,
            None => ContentType::from_file_name(name.as_str()).ok_or_else(|| RuleViolation {
                code: RuleCode::UnsupportedType,
                message: format!(
                    "Unsupported document type: no supported content type is implied by the name {:?}; set content_type",
                    name.as_str()
                ),
            })?,
        };
        if !limits.allows(content_type) {
            return Err(RuleViolation {
                code: RuleCode::UnsupportedType,
                message: format!(
                    "Unsupported document type: {} files are not allowed in this workspace",
                    content_type.label()
                ),
            });
        }
        if names_an_executable(name.as_str()) {
            return Err(executable(&name));
        }
        let path = LibraryPath::parse(input.path.unwrap_or_default())?;
        let labels = Labels::parse(input.labels.unwrap_or_default())?;
        let public_url = input.public_url.map(PublicUrl::parse).transpose()?;
        check_extension(&name, content_type)?;
        let size_bytes = match input.size_bytes {
            None => None,
            Some(size) => {
                let size = i64::try_from(size).unwrap_or(i64::MAX);
                if size > limits.max_file_bytes {
                    return Err(RuleViolation {
                        code: RuleCode::FileTooLarge,
                        message: format!(
                            "the file is {size} bytes; this workspace accepts at most {} bytes per file",
                            limits.max_file_bytes
                        ),
                    });
                }
                Some(size)
            }
        };
        let checksum = input.checksum_sha256.map(Checksum::parse).transpose()?;
        let upload = UploadRequest::parse(
            input.upload_method,
            input.part_size_bytes,
            input.part_checksums_sha256,
            size_bytes,
        )?;
        Ok(Self {
            local_file_path: local_file_path.map(str::to_owned),
            name,
            path,
            labels,
            public_url,
            content_type,
            size_bytes,
            checksum,
            upload,
        })
    }

    /// The bytes this file reserves against the quota until completion.
    #[must_use]
    pub fn reservation(&self, limits: &Limits) -> i64 {
        limits.reservation_for(self.size_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: FileInput<'_>) -> Result<FileSpec, RuleViolation> {
        FileSpec::parse(input, &Limits::default())
    }

    #[test]
    fn the_name_defaults_to_the_last_local_segment_and_the_type_to_its_extension() {
        let spec = parse(FileInput {
            local_file_path: Some("reports/q3.pdf"),
            ..Default::default()
        });
        let spec = spec.ok();
        assert_eq!(spec.as_ref().map(|s| s.name.as_str()), Some("q3.pdf"));
        assert_eq!(
            spec.as_ref().map(|s| s.content_type),
            Some(ContentType::Pdf)
        );
        assert_eq!(spec.as_ref().map(|s| s.path.as_str()), Some(""));
    }

    #[test]
    fn the_type_is_judged_before_the_name() {
        let declared = parse(FileInput {
            name: Some("evil.exe"),
            content_type: Some("application/x-msdownload"),
            ..Default::default()
        });
        assert_eq!(
            declared.err().map(|e| e.code),
            Some(RuleCode::UnsupportedType)
        );
        let implied = parse(FileInput {
            name: Some("evil.exe"),
            ..Default::default()
        });
        assert_eq!(
            implied.err().map(|e| e.code),
            Some(RuleCode::UnsupportedType)
        );
        // A supported type does not make an executable's name acceptable.
        let named = parse(FileInput {
            name: Some("evil.exe"),
            content_type: Some("text/plain"),
            ..Default::default()
        });
        assert_eq!(named.err().map(|e| e.code), Some(RuleCode::InvalidMetadata));
    }

    #[test]
    fn an_entry_needs_a_name_or_a_local_path() {
        assert_eq!(
            parse(FileInput::default()).err().map(|e| e.code),
            Some(RuleCode::InvalidMetadata)
        );
    }

    #[test]
    fn sizes_up_to_the_max_are_accepted_and_one_byte_more_is_too_large() {
        let at = parse(FileInput {
            name: Some("a.txt"),
            size_bytes: Some(5 << 20),
            ..Default::default()
        });
        assert!(at.is_ok());
        let over = parse(FileInput {
            name: Some("a.txt"),
            size_bytes: Some((5 << 20) + 1),
            ..Default::default()
        });
        assert_eq!(over.err().map(|e| e.code), Some(RuleCode::FileTooLarge));
        let huge = parse(FileInput {
            name: Some("a.txt"),
            size_bytes: Some(u64::MAX),
            ..Default::default()
        });
        assert_eq!(huge.err().map(|e| e.code), Some(RuleCode::FileTooLarge));
    }

    #[test]
    fn types_outside_the_workspace_allow_list_are_unsupported() {
        let limits = Limits {
            allowed_types: vec![ContentType::Pdf],
            ..Limits::default()
        };
        let md = FileSpec::parse(
            FileInput {
                name: Some("a.md"),
                ..Default::default()
            },
            &limits,
        );
        assert_eq!(md.err().map(|e| e.code), Some(RuleCode::UnsupportedType));
        let unknown = parse(FileInput {
            name: Some("a.tar.gz"),
            ..Default::default()
        });
        assert_eq!(
            unknown.err().map(|e| e.code),
            Some(RuleCode::UnsupportedType)
        );
    }

    #[test]
    fn names_that_say_another_type_or_an_executable_are_invalid() {
        for (name, ty) in [
            ("notes.pdf", Some("text/plain")),
            ("report.exe", Some("application/pdf")),
            ("run.bat", Some("text/plain")),
            ("setup.sh", Some("text/plain")),
            ("app.js", Some("text/plain")),
            ("page.html", Some("application/pdf")),
        ] {
            let res = parse(FileInput {
                name: Some(name),
                content_type: ty,
                ..Default::default()
            });
            assert_eq!(
                res.err().map(|e| e.code),
                Some(RuleCode::InvalidMetadata),
                "{name} as {ty:?}"
            );
        }
        // An extension no registered type claims says nothing.
        assert!(
            parse(FileInput {
                name: Some("notes.log"),
                content_type: Some("text/plain"),
                ..Default::default()
            })
            .is_ok()
        );
        // An alias of the declared type is the same type.
        assert!(
            parse(FileInput {
                name: Some("a.htm"),
                content_type: Some("text/html"),
                ..Default::default()
            })
            .is_ok()
        );
    }

    #[test]
    fn names_are_nfc_and_free_of_format_characters() {
        let nfd = parse(FileInput {
            name: Some("re\u{301}sume\u{301}.txt"),
            ..Default::default()
        });
        assert_eq!(
            nfd.map(|s| s.name.as_str().to_owned()).ok().as_deref(),
            Some("r\u{e9}sum\u{e9}.txt")
        );
        for name in [
            "invoice\u{202e}fdp.exe",
            "invoice\u{202e}txt.pdf",
            "a\u{200b}b.txt",
            "\u{feff}a.txt",
        ] {
            let res = parse(FileInput {
                name: Some(name),
                ..Default::default()
            });
            assert_eq!(
                res.err().map(|e| e.code),
                Some(RuleCode::InvalidMetadata),
                "{name:?}"
            );
        }
        let path = parse(FileInput {
            name: Some("a.txt"),
            path: Some("caf\u{65}\u{301}/"),
            labels: Some(&["\u{2066}x".to_owned()]),
            ..Default::default()
        });
        assert_eq!(path.err().map(|e| e.code), Some(RuleCode::InvalidMetadata));
    }

    #[test]
    fn an_undeclared_size_reserves_the_max_file_size() {
        let limits = Limits::default();
        let spec = FileSpec::parse(
            FileInput {
                name: Some("a.txt"),
                ..Default::default()
            },
            &limits,
        );
        assert_eq!(
            spec.map(|s| s.reservation(&limits)),
            Ok(limits.max_file_bytes)
        );
    }

    fn named(name: &str) -> FileInput<'_> {
        FileInput {
            name: Some(name),
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_holds_one_to_fifty_entries() {
        let limits = Limits::default();
        assert_eq!(
            FileSpec::parse_batch(&[], &limits).err(),
            Some(BatchError::Size(0))
        );
        let many = vec![named("a.pdf"); MAX_FILES_PER_REQUEST + 1];
        assert_eq!(
            FileSpec::parse_batch(&many, &limits).err(),
            Some(BatchError::Size(MAX_FILES_PER_REQUEST + 1))
        );
        let names: Vec<String> = (0..MAX_FILES_PER_REQUEST)
            .map(|i| format!("f{i}.pdf"))
            .collect();
        let fifty: Vec<FileInput<'_>> = names.iter().map(|n| named(n)).collect();
        assert_eq!(
            FileSpec::parse_batch(&fifty, &limits).map(|s| s.len()),
            Ok(MAX_FILES_PER_REQUEST)
        );
    }

    #[test]
    fn a_batch_lists_every_failing_entry_in_order_and_repeats_only_where_names_are_unique() {
        let limits = Limits::default();
        let inputs = [
            named("a.pdf"),
            named("run.exe"),
            named("a.pdf"),
            named("b.pdf"),
        ];
        let Err(BatchError::Entries(failures)) = FileSpec::parse_batch(&inputs, &limits) else {
            panic!("a bad entry and a repeat fail the batch");
        };
        let seen: Vec<(usize, RuleCode)> = failures.iter().map(|(i, v)| (*i, v.code)).collect();
        assert_eq!(
            seen,
            // `run.exe` implies no supported type: the type is judged before the name.
            [(1, RuleCode::UnsupportedType), (2, RuleCode::DuplicateFile)]
        );
        assert!(failures[1].1.message.contains("file 0"));
        let relaxed = Limits {
            unique_names: false,
            ..Limits::default()
        };
        assert_eq!(
            FileSpec::parse_batch(&[named("a.pdf"), named("a.pdf")], &relaxed).map(|s| s.len()),
            Ok(2)
        );
    }
}

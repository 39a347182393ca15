//! The bucket's key layout. Each file has two keys:
//!
//! - its *object key* `{workspace}/{file}` (`remote_file_path`), which downloads serve
//!   and which no presigned URL can write;
//! - its *upload key* `uploads/{workspace}/{file}`, which its presigned PUT writes and
//!   from which completion copies the verified version to the object key.
//!
//! Files a processor derives from a ready file (a video's frames) are under
//! `derived/{workspace}/{file}/{run}/`: the file's own prefix, one per run of its job,
//! so a run never writes over another's.
//!
//! Anything else in the bucket is not filegate's, and reconciliation leaves it alone.

use uuid::Uuid;

/// The prefix of every upload key.
pub const UPLOAD_PREFIX: &str = "uploads/";

/// The prefix of every derived file's key.
pub const DERIVED_PREFIX: &str = "derived/";

/// The key of a derived file: the `seq`th of `kind` (e.g. `frame`) made by run `run`
/// of the file's job, with extension `ext`.
#[must_use]
pub fn derived_key(
    workspace: Uuid,
    file: Uuid,
    run: i32,
    kind: &str,
    seq: i32,
    ext: &str,
) -> String {
    format!("{DERIVED_PREFIX}{workspace}/{file}/{run}/{kind}-{seq:06}.{ext}")
}

/// A file's object key.
#[must_use]
pub fn object_key(workspace: Uuid, file: Uuid) -> String {
    format!("{workspace}/{file}")
}

/// The upload key belonging to an object key.
#[must_use]
pub fn upload_key(object_key: &str) -> String {
    format!("{UPLOAD_PREFIX}{object_key}")
}

/// What a key in the bucket is to filegate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `{workspace}/{file}`.
    Object,
    /// `uploads/{workspace}/{file}`.
    Upload,
    /// `derived/{workspace}/{file}/…`.
    Derived,
    /// Not a key filegate makes.
    Foreign,
}

impl KeyKind {
    /// Classifies a key by its shape.
    #[must_use]
    pub fn of(key: &str) -> Self {
        parse(key).map_or(Self::Foreign, |k| k.kind)
    }
}

/// A key of filegate's shape, with the file it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey {
    /// [`KeyKind::Object`], [`KeyKind::Upload`] or [`KeyKind::Derived`].
    pub kind: KeyKind,
    pub workspace: Uuid,
    pub file: Uuid,
}

/// The file a key names, when the key has filegate's shape.
#[must_use]
pub fn parse(key: &str) -> Option<ParsedKey> {
    if let Some(rest) = key.strip_prefix(DERIVED_PREFIX) {
        let mut parts = rest.splitn(3, '/');
        return match (parts.next(), parts.next(), parts.next()) {
            (Some(w), Some(f), Some(name)) if !name.is_empty() => Some(ParsedKey {
                kind: KeyKind::Derived,
                workspace: uuid(w)?,
                file: uuid(f)?,
            }),
            _ => None,
        };
    }
    let (kind, rest) = match key.strip_prefix(UPLOAD_PREFIX) {
        Some(rest) => (KeyKind::Upload, rest),
        None => (KeyKind::Object, key),
    };
    let mut parts = rest.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(w), Some(f), None) => Some(ParsedKey {
            kind,
            workspace: uuid(w)?,
            file: uuid(f)?,
        }),
        _ => None,
    }
}

/// Only the hyphenated lowercase form filegate writes counts.
fn uuid(s: &str) -> Option<Uuid> {
    Uuid::try_parse(s)
        .ok()
        .filter(|u| s.len() == 36 && u.hyphenated().to_string() == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_by_shape() {
        let (w, f) = (Uuid::now_v7(), Uuid::now_v7());
        let object = object_key(w, f);
        assert_eq!(KeyKind::of(&object), KeyKind::Object);
        assert_eq!(KeyKind::of(&upload_key(&object)), KeyKind::Upload);
        assert_eq!(
            parse(&upload_key(&object)),
            Some(ParsedKey {
                kind: KeyKind::Upload,
                workspace: w,
                file: f
            })
        );
        let derived = derived_key(w, f, 2, "frame", 7, "jpg");
        assert_eq!(derived, format!("derived/{w}/{f}/2/frame-000007.jpg"));
        assert_eq!(
            parse(&derived),
            Some(ParsedKey {
                kind: KeyKind::Derived,
                workspace: w,
                file: f
            })
        );
        for foreign in [
            "",
            "derived/",
            &format!("derived/{w}/{f}"),
            &format!("derived/{w}/{f}/"),
            &format!("derived/{w}/x/1/frame-000001.jpg"),
            "backup.tar",
            "uploads/",
            &format!("{w}"),
            &format!("{w}/{f}/x"),
            &format!("{w}/{f}.pdf"),
            &format!("other/{w}/{f}"),
            &object.to_uppercase(),
            &format!("{}/{}", w.simple(), f.simple()),
        ] {
            assert_eq!(KeyKind::of(foreign), KeyKind::Foreign, "{foreign}");
        }
    }
}

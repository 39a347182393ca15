//! The schema constraints whose violation is an expected outcome rather than a
//! failure. Each one's SQL name is written here and nowhere else; a violation reaches
//! callers as [`DbError::constraint`](crate::DbError::constraint).

/// A constraint the code reacts to when a statement violates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// Live (pending or ready) files of a workspace are unique by path and name, where
    /// the workspace asks for unique names: the partial unique index
    /// `files_live_name_path`.
    LiveNamePath,
    /// One idempotency record per API key and `Idempotency-Key`: the primary key
    /// `idempotency_keys_pkey`.
    IdempotencyKey,
    /// A workspace's used plus reserved bytes never exceed its quota: the CHECK
    /// `workspaces_within_quota`.
    WithinQuota,
}

impl Constraint {
    const ALL: [Self; 3] = [Self::LiveNamePath, Self::IdempotencyKey, Self::WithinQuota];

    /// The constraint's name in the schema.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::LiveNamePath => "files_live_name_path",
            Self::IdempotencyKey => "idempotency_keys_pkey",
            Self::WithinQuota => "workspaces_within_quota",
        }
    }

    /// The constraint named `name`; `None` for one the code does not react to.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::Constraint;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for c in Constraint::ALL {
            assert_eq!(Constraint::from_name(c.name()), Some(c));
        }
        assert_eq!(Constraint::from_name("files_pkey"), None);
        assert_eq!(Constraint::from_name(""), None);
    }
}

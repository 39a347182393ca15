//! The import worker: every replica takes up imports nobody runs (a replica that
//! reserves imports starts them at once; this finds the ones whose replica died, and
//! the ones tried again after a failure of the store).

use crate::service::imports::{ImportReport, Imports};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Importer {
    imports: Imports,
}

impl Importer {
    #[must_use]
    pub fn new(imports: Imports) -> Self {
        Self { imports }
    }
}

impl super::Job for Importer {
    type Report = ImportReport;
    type Error = filegate_db::DbError;
    const NAME: &'static str = "imports";

    async fn run_once(&self) -> Result<ImportReport, filegate_db::DbError> {
        self.imports.run_due().await
    }

    fn noteworthy(report: &ImportReport) -> bool {
        report.claimed > 0
    }
}

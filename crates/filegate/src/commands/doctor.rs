//! `filegate doctor`: probes the configured bucket and prints, for each capability,
//! what the probe saw and what filegate does about it ([`crate::service::trust`]).

use std::fmt::Write as _;
use std::process::ExitCode;

use filegate_storage::Storage;
use filegate_storage::probe::{Report, Support};
use serde_json::{Value, json};

use crate::service::trust::{enforces_nothing, missing_required, policy, probe};
use crate::settings::DoctorArgs;

/// The report as a table, one line per capability, then the support.
#[must_use]
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "{:<25} {:<8} {:<44} {}\n",
        "CAPABILITY", "RESULT", "SEEN", "WHAT FILEGATE DOES"
    );
    for f in &report.findings {
        let policy = policy(f.capability);
        let note = match f.support {
            Support::Yes if policy.required => "needed; present",
            Support::Yes => "used",
            Support::Skipped => "not applicable here",
            Support::No | Support::Unknown => policy.without,
        };
        let _ = writeln!(
            out,
            "{:<25} {:<8} {:<44} {note}",
            f.capability.name(),
            f.support.as_str(),
            clip(&f.detail, 44),
        );
    }
    let missing = missing_required(report);
    if missing.is_empty() {
        out.push_str("\nThe store provides what filegate needs.\n");
    } else {
        let names: Vec<&str> = missing.iter().map(|c| c.name()).collect();
        let _ = writeln!(
            out,
            "\nMissing what filegate needs for its guarantees: {}",
            names.join(", ")
        );
    }
    if enforces_nothing(report) {
        out.push_str(
            "This store enforces no signed header: `filegate serve` refuses it unless \
             FILEGATE_UNSAFE_ALLOW_UNENFORCING_STORE is set.\n",
        );
    }
    out
}

/// The report as JSON: every capability with its result, what was seen, whether
/// filegate needs it and what it does without it.
#[must_use]
pub fn json(report: &Report) -> Value {
    json!({
        "ok": missing_required(report).is_empty(),
        "enforces_nothing": enforces_nothing(report),
        "clock_skew_seconds": report.skew.map(|s| s.num_seconds()),
        "capabilities": report.findings.iter().map(|f| {
            let policy = policy(f.capability);
            json!({
                "name": f.capability.name(),
                "result": f.support.as_str(),
                "seen": f.detail,
                "required": policy.required,
                "without": policy.without,
            })
        }).collect::<Vec<_>>(),
    })
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(width.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// `filegate doctor`: probe, print, exit 1 when a needed capability is missing.
///
/// # Errors
/// Only when the report cannot be printed.
pub async fn run(args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let storage = Storage::new(&args.storage.storage()).await;
    let report = probe(&storage, &args.cors_origins).await;
    #[allow(clippy::print_stdout)]
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&report))?);
    } else {
        print!("{}", table(&report));
    }
    Ok(if missing_required(&report).is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

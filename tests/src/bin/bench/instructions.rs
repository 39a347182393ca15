//! (i) Instructions per request, a figure the machine's load does not move: filegate
//! runs under valgrind's callgrind (this VM has no hardware counters for `perf stat`),
//! takes requests until warm, has its counters zeroed (`callgrind_control -z`), serves
//! a counted number of one-file reservations, then of single completions, each
//! followed by a dump (`callgrind_control -d`) whose total is the instructions the
//! process executed, every thread included. Background jobs are off, so the count is
//! the requests' own. A database of its own.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use uuid::Uuid;

use super::instance::{Instance, drop_database, fresh_database};
use super::{Target, complete_one, prepare, reserve_op};

/// Requests counted per figure (after as many to warm up).
const COUNTED: usize = 400;

/// Runs (i); its lines as markdown.
pub async fn run(db: &str) -> String {
    let url = fresh_database(db, "i").await;
    let client = filegate_tests::connect(&url).await;
    let tenant = super::tenant(&client).await;
    let key = Arc::new(tenant.minted.secret.clone());
    let ws = Arc::new(tenant.ws);
    let dir = std::env::temp_dir().join(format!("fg-callgrind-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("callgrind.out");
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let instance = Instance::start_under(
        &["valgrind", "--tool=callgrind", "--quiet", &out_arg],
        &url,
        &[],
    )
    .await;
    let target = Target {
        http: reqwest::Client::new(),
        key,
        url: instance.url.clone(),
    };
    // Uploaded objects for the completions, made first (they warm the server too).
    let objects = prepare(&target, &ws, 4, 2 * COUNTED).await;
    let reserve = |n: usize| {
        let op = reserve_op(&target, &ws, 1, true);
        async move {
            let mut done = 0;
            for i in 0..n as u64 {
                done += usize::from(op(0, i).await == Some(true));
            }
            done
        }
    };
    let complete = |ids: Vec<Uuid>| {
        let target = target.clone();
        async move {
            let mut done = 0;
            for id in ids {
                done += usize::from(complete_one(&target, id).await);
            }
            done
        }
    };
    let ids: Vec<Uuid> = objects.iter().map(|(id, _)| *id).collect();
    let (warm, counted) = ids.split_at(ids.len() / 2);

    reserve(COUNTED).await;
    let reservations = counted_run(&instance.pid, &out, || reserve(COUNTED)).await;
    complete(warm.to_vec()).await;
    let completions = counted_run(&instance.pid, &out, || complete(counted.to_vec())).await;
    drop(instance);
    drop_database(db, "i").await;
    let _ = std::fs::remove_dir_all(&dir);
    let line = |what: &str, (instructions, n): (u64, usize)| {
        format!(
            "{what}: {:.0} k instructions each ({n} counted, {:.1} M in all)",
            instructions as f64 / n.max(1) as f64 / 1000.0,
            instructions as f64 / 1e6,
        )
    };
    format!(
        "(i) instructions per request in filegate's process (`BENCH_ONLY=i scripts/bench`: callgrind, one client, \
         background jobs off, after a warm-up): {}; {}.\n",
        line("a one-file reservation", reservations),
        line(
            "a single completion (claim, HEAD and ranged GET, copy, settle)",
            completions
        ),
    )
}

/// Zeroes the process's counters, runs `work` (which returns how many requests
/// succeeded), dumps, and returns the instructions executed meanwhile with the count.
async fn counted_run<F, Fut>(pid: &str, out: &Path, work: F) -> (u64, usize)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = usize>,
{
    control(pid, "-z");
    let n = work().await;
    // Dumps go to the out file with a numbered suffix; the newest is this one.
    let dir = out.parent().unwrap();
    let before: Vec<_> = dumps(dir);
    control(pid, "-d");
    let after = dumps(dir);
    let newest = after
        .iter()
        .find(|p| !before.contains(p))
        .cloned()
        .or_else(|| after.last().cloned())
        .expect("a callgrind dump");
    (instructions(&newest), n)
}

fn control(pid: &str, flag: &str) {
    let status = Command::new("callgrind_control")
        .args([flag, pid])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("callgrind_control");
    assert!(status.success(), "callgrind_control {flag} failed");
}

fn dumps(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// The `summary:` (or `totals:`) of a callgrind dump: instructions executed.
fn instructions(dump: &Path) -> u64 {
    let text = std::fs::read_to_string(dump).unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no totals in {}", dump.display()))
}

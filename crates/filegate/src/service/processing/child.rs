//! A processor's tool as a bounded child process: its address space and the size of
//! any file it writes capped by util-linux's `prlimit` (so a hostile input makes its
//! allocations or writes fail, not the host swap or fill its disk), an environment of
//! `PATH` alone, killed at the run's deadline, its output read up to a cap and the tail
//! of its diagnostics kept for the failure's reason. No shell: the program and its
//! arguments go to `execve` as given.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::time::Instant;

/// What a child is allowed.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// When every child of the run must have ended.
    pub deadline: Instant,
    /// Bytes of address space each child may map (`RLIMIT_AS`).
    pub memory_bytes: u64,
}

/// The `PATH` a child gets when filegate has none.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Bytes any one file a child writes may reach (`RLIMIT_FSIZE`): a frame is far
/// smaller; a runaway output stops here.
const FILE_MAX: u64 = 256 << 20;
/// Bytes of standard output kept (a probe's JSON is far smaller).
const STDOUT_MAX: usize = 1 << 20;
/// Bytes of standard error kept: the end, where a tool says why it stopped.
const STDERR_TAIL: usize = 2048;

/// How a child ended when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The program could not be started (not installed, not executable).
    #[error("could not start {program}: {reason}")]
    Spawn { program: String, reason: String },
    /// It ran past the run's deadline and was killed.
    #[error("{program} ran past the processing time bound and was killed")]
    TimedOut { program: String },
    /// It exited with a failure (or was killed by a signal, such as running out of
    /// memory under its bound).
    #[error("{program} failed ({status}): {diagnostics}")]
    Failed {
        program: String,
        status: String,
        diagnostics: String,
    },
    #[error("could not read {program}'s output: {source}")]
    Io {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

impl ChildError {
    /// The child ran and failed on its input (rather than not starting at all).
    #[must_use]
    pub fn is_input_failure(&self) -> bool {
        matches!(self, Self::TimedOut { .. } | Self::Failed { .. })
    }
}

/// Runs `program` with `args` in the directory `dir` (so the paths it is given, and
/// names in its diagnostics, are relative) under `bounds`; its standard output when it
/// exits 0.
///
/// # Errors
/// [`ChildError`] when it cannot start, fails, or runs past the deadline.
pub async fn run<I, S>(
    program: &str,
    args: I,
    dir: &Path,
    bounds: Bounds,
) -> Result<Vec<u8>, ChildError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    // util-linux's prlimit caps the child's address space (and forbids core files)
    // before it execs the tool: the limit is set between fork and exec, where this
    // crate's safe code cannot reach.
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={}", bounds.memory_bytes))
        .arg(format!("--fsize={FILE_MAX}"))
        .arg("--core=0")
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(dir)
        // Nothing of filegate's environment (its database URL, its store's secret)
        // reaches a tool that parses hostile input: only where to find programs.
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
        )
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| ChildError::Spawn {
        program: program.to_owned(),
        reason: format!("prlimit: {e}"),
    })?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("both were piped");
    };
    let io = |source| ChildError::Io {
        program: program.to_owned(),
        source,
    };
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            let mut buf = vec![0u8; 8192];
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                if out.len() < STDOUT_MAX {
                    out.extend_from_slice(&buf[..n.min(STDOUT_MAX - out.len())]);
                }
            }
        };
        let read_err = async {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = stderr.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                err.extend_from_slice(&buf[..n]);
                if err.len() > 2 * STDERR_TAIL {
                    err.drain(..err.len() - STDERR_TAIL);
                }
            }
        };
        let (a, b) = tokio::join!(read_out, read_err);
        a.map_err(io)?;
        b.map_err(io)?;
        let status = child.wait().await.map_err(io)?;
        Ok::<_, ChildError>((status, out, err))
    };
    let (status, out, err) = match tokio::time::timeout_at(bounds.deadline, work).await {
        Ok(done) => done?,
        // Dropping `work` drops the child, which kills it (`kill_on_drop`).
        Err(_) => {
            return Err(ChildError::TimedOut {
                program: program.to_owned(),
            });
        }
    };
    if status.success() {
        return Ok(out);
    }
    let tail = &err[err.len().saturating_sub(STDERR_TAIL)..];
    let diagnostics = String::from_utf8_lossy(tail)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // prlimit's own exit codes when it cannot exec the program.
    if matches!(status.code(), Some(126 | 127)) {
        return Err(ChildError::Spawn {
            program: program.to_owned(),
            reason: diagnostics,
        });
    }
    Err(ChildError::Failed {
        program: program.to_owned(),
        status: status.to_string(),
        diagnostics: if diagnostics.is_empty() {
            "no diagnostics".to_owned()
        } else {
            diagnostics
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bounds(ms: u64) -> Bounds {
        Bounds {
            deadline: Instant::now() + Duration::from_millis(ms),
            memory_bytes: 1 << 30,
        }
    }

    #[tokio::test]
    async fn output_is_returned_and_the_child_runs_where_it_is_told() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input"), b"here").unwrap();
        let out = run("cat", ["input"], dir.path(), bounds(5_000))
            .await
            .unwrap();
        assert_eq!(out, b"here");
    }

    #[tokio::test]
    async fn a_failure_keeps_the_tail_of_its_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        let e = run(
            "sh",
            ["-c", "echo first >&2; echo why >&2; exit 3"],
            dir.path(),
            bounds(5_000),
        )
        .await
        .unwrap_err();
        assert!(e.is_input_failure());
        assert_eq!(e.to_string(), "sh failed (exit status: 3): first; why");
    }

    #[tokio::test]
    async fn a_child_sees_no_environment_but_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let out = run("env", std::iter::empty::<&str>(), dir.path(), bounds(5_000))
            .await
            .unwrap();
        let mut names: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        names.sort();
        assert_eq!(names, ["LC_ALL", "PATH"]);
    }

    #[tokio::test]
    async fn a_child_past_the_deadline_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let e = run("sleep", ["30"], dir.path(), bounds(200))
            .await
            .unwrap_err();
        assert!(matches!(e, ChildError::TimedOut { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_failure_to_start_not_of_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let e = run("no-such-tool-here", ["-version"], dir.path(), bounds(5_000))
            .await
            .unwrap_err();
        assert!(matches!(e, ChildError::Spawn { .. }), "{e}");
        assert!(!e.is_input_failure());
    }

    #[tokio::test]
    async fn the_address_space_bound_holds_in_the_child() {
        let dir = tempfile::tempdir().unwrap();
        // `ulimit -v` reports the bound in KiB, as the child sees it.
        let out = run(
            "sh",
            ["-c", "ulimit -v"],
            dir.path(),
            Bounds {
                deadline: Instant::now() + Duration::from_secs(5),
                memory_bytes: 256 << 20,
            },
        )
        .await
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim(), "262144");
    }
}

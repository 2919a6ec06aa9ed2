//! Optional `perf record` of the process under test (`bench run --perf`).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use serde_json::{Value, json};

use crate::Res;

/// `perf record` of the process under test, during the measured window.
pub(crate) struct Perf {
    child: Child,
    data: PathBuf,
    report: PathBuf,
}

impl Perf {
    pub(crate) fn start(pid: u32, logs: &Path, scenario: &str) -> Res<Self> {
        let data = logs.join(format!("perf-{scenario}.data"));
        let child = Command::new("perf")
            .args(["record", "-F", "999", "--call-graph"])
            .arg(std::env::var("BENCH_PERF_CALL_GRAPH").unwrap_or_else(|_| "fp".into()))
            .args(["-p", &pid.to_string(), "-o"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e} (apt-get install linux-perf)"))?;
        Ok(Self {
            child,
            data,
            report: logs.join(format!("perf-{scenario}.txt")),
        })
    }

    /// Stops recording; writes the flat report beside the data and returns
    /// the top symbols (self time).
    pub(crate) fn finish(mut self) -> Value {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "--no-children",
                "-g",
                "none",
                "--percent-limit",
                "0.7",
                "--sort",
                "dso,symbol",
                "-i",
            ])
            .arg(&self.data)
            .stderr(Stdio::null())
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let _ = fs::write(&self.report, &text);
        let top: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .take(25)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        json!({ "data": self.data.display().to_string(), "report": self.report.display().to_string(), "top_self": top })
    }
}

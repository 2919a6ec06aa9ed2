//! Measuring processes from outside: CPU time, memory, sockets and run-queue
//! waits read from `/proc`, plus small numeric and clock helpers.

use std::{
    fs,
    process::Command,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

fn clk_tck() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process, in seconds (all threads, live or exited).
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

/// A `Vm*` line of `/proc/<pid>/status`, in bytes.
pub(crate) fn vm_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub(crate) fn open_sockets(pid: u32) -> usize {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Busy CPU seconds of the whole machine (every core).
fn machine_busy_secs() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| *x)
        .sum();
    busy as f64 / clk_tck()
}

/// Seconds the threads of `pid` spent runnable but waiting for a CPU
/// (`/proc/<pid>/task/*/schedstat`, second field): the scheduler's share of
/// a latency.
pub(crate) fn runqueue_wait_secs(pid: u32) -> f64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

pub(crate) fn broker_pid() -> Option<u32> {
    beam_pids().into_iter().next()
}

/// Every `beam.smp` on the machine.
fn beam_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
        .collect()
}

/// The broker's pid when exactly one `beam.smp` runs on the machine (the
/// 4.x nodes and the clusters stopped): only then is its CPU the one under
/// test.
pub(crate) fn only_broker_pid() -> Option<u32> {
    match beam_pids()[..] {
        [pid] => Some(pid),
        _ => None,
    }
}

/// CPU seconds of the machine, the broker and this process, for telling
/// how much of a scenario's window went to somebody else.
#[derive(Clone, Copy)]
pub(crate) struct Noise {
    machine: f64,
    broker: f64,
    bench: f64,
}

impl Noise {
    pub(crate) fn now() -> Self {
        Self {
            machine: machine_busy_secs(),
            broker: broker_pid().and_then(cpu_secs).unwrap_or(0.0),
            bench: cpu_secs(std::process::id()).unwrap_or(0.0),
        }
    }
    /// Breakdown of a window, given the CPU of the process under test.
    pub(crate) fn since(&self, start: &Noise, wall: f64, sut_cpu: f64) -> Value {
        let now = *self;
        let machine = now.machine - start.machine;
        let broker = now.broker - start.broker;
        let bench = now.bench - start.bench;
        let other = (machine - broker - bench - sut_cpu).max(0.0);
        json!({
            "wall_s": round(wall, 3),
            "machine_busy_cores": round(machine / wall, 2),
            "sut_cores": round(sut_cpu / wall, 2),
            "broker_cores": round(broker / wall, 2),
            "bench_and_receiver_cores": round(bench / wall, 2),
            "other_cores": round(other / wall, 2),
        })
    }
}

pub(crate) fn num_cpus() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

pub(crate) fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

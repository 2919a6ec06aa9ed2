//! One run of a receiver scenario against the virtual receivers: publish the
//! backlog, start the system under test (the worker at its defaults, or the
//! naive baseline at 256 in flight), record every answer for a fixed window,
//! stop it, read what is left in the queues, and count lost, duplicated and
//! parked events.

use std::{
    collections::HashSet,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::Bench;
use crate::{
    MIB, Res,
    lib_api::QueueType,
    sys::{Noise, cpu_secs, loadavg, round, vm_bytes},
    vhosts::{Answer, Behave, RunRec},
    worker_proc::{WorkerProc, metric_line, metric_sum},
};

/// In flight in the naive baseline of the receiver scenarios (the issue's
/// figure, whatever the worker's default is).
pub(super) const NAIVE_CONCURRENCY: u16 = 256;

/// The in-flight count the backlogs are sized for (a worker with up to this
/// many deliveries in flight does not drain the backlog before the window
/// ends); a faster run drains early and is measured up to 95 % of its
/// deliveries.
pub(super) const SIZED_FOR_IN_FLIGHT: f64 = 1024.0;

/// Half-second bins of the timelines.
pub(super) const BIN_S: f64 = 0.5;

/// A backlog for `window_s` at `ideal_per_s`, with headroom.
pub(super) fn backlog(ideal_per_s: f64, window_s: f64) -> usize {
    ((ideal_per_s * window_s * 1.25) as usize).clamp(2_000, 150_000)
}

/// A receiver scenario: its receivers, how events are spread over them,
/// its backlog and window.
pub(super) struct Plan {
    pub(super) name: &'static str,
    pub(super) hosts: Vec<Behave>,
    /// Groups of hosts reported together (label, host indices).
    pub(super) groups: Vec<(String, Vec<usize>)>,
    pub(super) route: fn(usize) -> usize,
    pub(super) events: usize,
    pub(super) window_s: f64,
    /// Warm-up excluded from the steady rates.
    pub(super) skip_s: f64,
    /// (seconds after the first request, host): the host starts to hang.
    pub(super) turns_bad: Option<(f64, usize)>,
}

/// The system under test.
#[derive(Clone, Copy)]
pub(super) enum Sut<'a> {
    Naive,
    Worker(&'a Path),
}

enum Proc {
    Naive(std::process::Child),
    Worker(WorkerProc),
}

impl Bench {
    pub(super) async fn vrun(&self, plan: &Plan, sut: Sut<'_>, label: &str) -> Res<Value> {
        let scenario = format!("{}-{label}", plan.name);
        let prefix = self.prefix(&scenario);
        let t = self
            .broker
            .declare(&prefix, QueueType::Quorum, None)
            .await?;
        let urls: Vec<String> = (0..plan.hosts.len()).map(|h| self.vhosts.url(h)).collect();
        eprintln!(
            "bench: {scenario}: publishing {} events to {} receivers",
            plan.events,
            urls.len()
        );
        let route = plan.route;
        self.broker
            .publish_bulk(t.exchange(), plan.events, &|i| urls[route(i)].clone(), "e")
            .await?;
        let rec = self.vhosts.arm(&plan.hosts, plan.events);
        let load_start = loadavg();
        let mut proc = match sut {
            Sut::Naive => Proc::Naive(self.spawn_naive(t.deliveries(), NAIVE_CONCURRENCY)?),
            Sut::Worker(bin) => {
                let mut w = WorkerProc::spawn_defaults(bin, &prefix, &self.log(&scenario)).await?;
                w.wait_ready(Duration::from_secs(30)).await?;
                Proc::Worker(w)
            }
        };
        let pid = match &proc {
            Proc::Naive(c) => c.id(),
            Proc::Worker(w) => w.pid,
        };
        let noise0 = Noise::now();
        let cpu0 = cpu_secs(pid).unwrap_or(0.0);
        // The worker's limits as they move: /receivers every 250 ms.
        let limits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sampler = match &proc {
            Proc::Worker(w) => Some(tokio::spawn(sample_limits(
                w.http.clone(),
                w.metrics.clone(),
                w.pid,
                rec.clone(),
                limits.clone(),
            ))),
            Proc::Naive(_) => None,
        };
        let r = self.watch(plan, &rec, &t).await;
        if let Some(h) = sampler {
            h.abort();
        }
        let end_s = rec.now_s();
        // The window's noise, before the drain and the queue reads.
        let noise1 = Noise::now();
        let cpu = cpu_secs(pid).unwrap_or(0.0) - cpu0;
        let hwm = vm_bytes(pid, "VmHWM").unwrap_or(0);
        let mut extra = json!({});
        if let Proc::Worker(w) = &proc {
            let text = w.metrics_text().await.unwrap_or_default();
            extra = json!({
                "deferred": metric_sum(&text, "webhook_deferred_total"),
                "retried": metric_sum(&text, "webhook_retried_total"),
                "in_flight_at_end": metric_sum(&text, "webhook_in_flight"),
                "timeouts": metric_line(w, "webhook_attempts_total", "outcome=\"timeout\"").await,
                "startup": w.startup_line(),
                "receivers_endpoint": w.get("/receivers").await
                    .and_then(|s| serde_json::from_str::<Value>(&s).ok()),
                "limit_decreases": decreases(&text),
                "limit_timeline": std::mem::take(&mut *limits.lock().unwrap()),
            });
        }
        // After the window: hanging requests answer (504) so the drain is quick.
        self.vhosts.release();
        match proc {
            Proc::Naive(ref mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            Proc::Worker(w) => w.stop(Duration::from_secs(40)).await,
        }
        let left = self.broker.take_all(&t).await;
        self.broker.cleanup(&t).await;
        let (turned_at, drained) = r?;
        let left = left?;
        let first = rec.first_s().ok_or("no request reached any receiver")?;
        let mut v = analyse(plan, &rec, first, end_s, drained);
        v["turned_bad_at_s"] = json!(turned_at.map(|s| round(s - first, 2)));
        v["accounting"] = accounting(&rec, plan.events, &left);
        v["peak_rss_mib"] = json!(round(hwm as f64 / MIB, 1));
        v["cpu_cores"] = json!(round(cpu / (end_s - first).max(0.1), 2));
        // noise0 is taken at the consumer's start, just before the first request.
        v["noise"] = noise1.since(&noise0, end_s - first, cpu);
        v["loadavg"] = json!({ "start": load_start, "end": loadavg() });
        v["per_host"] = json!((0..plan.hosts.len())
            .map(|h| json!({ "arrivals": self.vhosts.arrivals(h), "max_in_flight": self.vhosts.max_in_flight(h) }))
            .collect::<Vec<_>>());
        v["sut"] = match sut {
            Sut::Naive => json!(format!("naive-worker --concurrency {NAIVE_CONCURRENCY}")),
            Sut::Worker(bin) => json!(bin.display().to_string()),
        };
        if let Value::Object(e) = extra {
            v.as_object_mut().unwrap().extend(e);
        }
        eprintln!(
            "bench:   {scenario}: {} /s steady ({}), RSS {} MiB, lost {} dup {} parked {}",
            v["steady_per_s"],
            v["steady_per_s_by_group"],
            v["peak_rss_mib"],
            v["accounting"]["lost"],
            v["accounting"]["duplicates"],
            v["accounting"]["parked"]
        );
        Ok(v)
    }

    /// Waits out the window (from the first request), turning the bad host
    /// bad on time; ends early once the backlog is delivered. Returns when
    /// the host turned bad (run seconds) and whether the backlog drained.
    async fn watch(
        &self,
        plan: &Plan,
        rec: &Arc<RunRec>,
        t: &crate::lib_api::Topology,
    ) -> Res<(Option<f64>, bool)> {
        let armed = Instant::now();
        let (mut turned, mut last_ok, mut last_change) = (None, 0, Instant::now());
        let mut last_probe = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let Some(first) = rec.first_s() else {
                if armed.elapsed() > Duration::from_secs(60) {
                    return Err("nothing reached the receivers in 60 s".into());
                }
                continue;
            };
            let t_run = rec.now_s() - first;
            if let Some((at, host)) = plan.turns_bad
                && turned.is_none()
                && t_run >= at
            {
                self.vhosts.set(host, Behave::Hang);
                turned = Some(rec.now_s());
                eprintln!("bench:   receiver {host} hangs from now on ({t_run:.2} s)");
            }
            if t_run >= plan.window_s {
                return Ok((turned, false));
            }
            let ok = rec.ok_total();
            if ok != last_ok {
                (last_ok, last_change) = (ok, Instant::now());
            }
            // Drained: the work queue is empty and no success for 2 s.
            if last_change.elapsed() > Duration::from_secs(2)
                && last_probe.elapsed() > Duration::from_millis(500)
            {
                last_probe = Instant::now();
                if self.broker.ready(t.deliveries()).await == Some(0)
                    && self.vhosts.in_flight() == 0
                {
                    return Ok((turned, true));
                }
            }
        }
    }
}

/// Every 250 ms from the first request: the run time, the worker's open
/// file descriptors (its connections, nearly all) and resident memory, and,
/// per receiver in its `GET /receivers`, `[limit, in_flight, state]`.
pub(super) async fn sample_limits(
    http: reqwest::Client,
    base: String,
    pid: u32,
    rec: Arc<RunRec>,
    out: Arc<std::sync::Mutex<Vec<Value>>>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let Some(first) = rec.first_s() else { continue };
        let Ok(r) = http.get(format!("{base}/receivers")).send().await else {
            continue;
        };
        let Some(v) = r
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let rows: Vec<Value> = v["receivers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| json!([r["limit"], r["in_flight"], r["state"]]))
                    .collect()
            })
            .unwrap_or_default();
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        let rss = round(vm_bytes(pid, "VmRSS").unwrap_or(0) as f64 / MIB, 1);
        out.lock().unwrap().push(json!({
            "t_s": round(rec.now_s() - first, 2),
            "fds": fds,
            "rss_mib": rss,
            "receivers": rows,
        }));
    }
}

/// `webhook_receiver_limit_decreases_total` by cause.
fn decreases(metrics: &str) -> Value {
    let mut by = serde_json::Map::new();
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("webhook_receiver_limit_decreases_total{"))
    {
        let cause = l.split('"').nth(1).unwrap_or("?").to_string();
        let n = l
            .rsplit(' ')
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .unwrap_or(0.0);
        by.insert(cause, json!(n));
    }
    Value::Object(by)
}

/// 2xx answers per half second of every group, from the first request.
pub(super) fn bins(answers: &[Answer], plan: &Plan, first: f64, end: f64) -> Vec<Vec<u64>> {
    let n = (((end - first) / BIN_S).ceil() as usize).max(1);
    let mut out = vec![vec![0u64; n]; plan.groups.len()];
    for a in answers.iter().filter(|a| a.status < 300) {
        let t = a.t_us as f64 / 1e6 - first;
        if t < 0.0 {
            continue;
        }
        let b = ((t / BIN_S) as usize).min(n - 1);
        for (g, (_, hosts)) in plan.groups.iter().enumerate() {
            if hosts.contains(&(a.host as usize)) {
                out[g][b] += 1;
            }
        }
    }
    out
}

fn analyse(plan: &Plan, rec: &RunRec, first: f64, end: f64, drained: bool) -> Value {
    let answers = rec.answers();
    let ok_times: Vec<f64> = answers
        .iter()
        .filter(|a| a.status < 300)
        .map(|a| a.t_us as f64 / 1e6 - first)
        .collect();
    // The steady window: after the warm-up, up to the window's end, or, for
    // a drained backlog, up to 95 % of its successes (the tail excluded).
    let hi = if drained && !ok_times.is_empty() {
        let mut s = ok_times.clone();
        s.sort_by(f64::total_cmp);
        s[(s.len() * 95 / 100).min(s.len() - 1)]
    } else {
        (end - first).min(plan.window_s)
    };
    let lo = plan.skip_s.min(hi / 2.0);
    let span = (hi - lo).max(0.001);
    let in_window = |a: &&Answer| {
        let t = a.t_us as f64 / 1e6 - first;
        a.status < 300 && t >= lo && t < hi
    };
    let mut by_group = serde_json::Map::new();
    for (label, hosts) in &plan.groups {
        let c = answers
            .iter()
            .filter(in_window)
            .filter(|a| hosts.contains(&(a.host as usize)))
            .count();
        by_group.insert(label.clone(), json!((c as f64 / span).round()));
    }
    let steady = answers.iter().filter(in_window).count() as f64 / span;
    // First attempts: how many succeeded, overall and in the second half.
    let firsts: Vec<&Answer> = answers.iter().filter(|a| a.attempt <= 1).collect();
    let share = |v: &[&Answer]| {
        (!v.is_empty()).then(|| {
            round(
                v.iter().filter(|a| a.status < 300).count() as f64 / v.len() as f64,
                3,
            )
        })
    };
    let mut statuses = std::collections::BTreeMap::new();
    for a in &answers {
        *statuses.entry(a.status.to_string()).or_insert(0u64) += 1;
    }
    let timeline = bins(&answers, plan, first, end);
    json!({
        "events": plan.events,
        "window_s": plan.window_s,
        "ran_s": round(end - first, 2),
        "drained_early": drained,
        "steady_window_s": [round(lo, 2), round(hi, 2)],
        "steady_per_s": steady.round(),
        "steady_per_s_by_group": by_group,
        "delivered_in_run": rec.ok_total(),
        "answers_by_status": statuses,
        "first_attempts": firsts.len(),
        "first_attempt_success_share": share(&firsts),
        "first_attempt_success_share_second_half": share(&firsts[firsts.len() / 2..]),
        "timeline": {
            "bin_s": BIN_S,
            "groups": plan.groups.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
            "ok_per_bin": timeline,
        },
    })
}

/// Lost: published, never answered 2xx, and not in any queue afterwards.
/// Duplicates: 2xx answers beyond the first of an event. Parked: in `P.dead`.
fn accounting(rec: &RunRec, n: usize, left: &[(String, Vec<usize>)]) -> Value {
    let ok = rec.ok_counts();
    let queued: HashSet<usize> = left
        .iter()
        .flat_map(|(_, ids)| ids.iter().copied())
        .collect();
    let lost = (0..n)
        .filter(|i| ok[*i] == 0 && !queued.contains(i))
        .count();
    let delivered = ok.iter().filter(|c| **c > 0).count();
    let dup: u64 = ok.iter().map(|c| u64::from(c.saturating_sub(1))).sum();
    let count = |pred: &dyn Fn(&str) -> bool| -> usize {
        left.iter()
            .filter(|(q, _)| pred(q))
            .map(|(_, ids)| ids.len())
            .sum()
    };
    let delivered_and_queued = queued
        .iter()
        .filter(|i| ok.get(**i).is_some_and(|c| *c > 0))
        .count();
    json!({
        "published": n,
        "delivered": delivered,
        "duplicates": dup,
        "lost": lost,
        "parked": count(&|q| q.ends_with(".dead")),
        "in_retry_tiers": count(&|q| q.contains(".retry.")),
        "in_work_queue": count(&|q| q.ends_with(".deliveries")),
        "delivered_and_still_queued": delivered_and_queued,
        "unreadable_bodies": rec.bad_index(),
    })
}

//! The burst runs' chart: the other sites' p99 latency over time, as SVG.

use serde_json::Value;

/// The other sites' p99 over time, one line per shard count.
pub(crate) fn svg(runs: &[Value]) -> String {
    let (w, h, pad) = (720.0, 360.0, 48.0);
    let pts = |r: &Value| {
        r["others_p99_ms_by_250ms"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let xmax = runs
        .iter()
        .flat_map(pts)
        .map(|p| p[0].as_f64().unwrap_or(0.0))
        .fold(1.0, f64::max);
    let ymax = runs
        .iter()
        .flat_map(pts)
        .map(|p| p[1].as_f64().unwrap_or(0.0))
        .fold(1.0, f64::max);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    out += &format!(
        r#"<text x="{pad}" y="20">other sites' p99 latency (publish → receipt) per 250 ms while one site bursts; x: s from the burst's start (max {xmax:.1} s), y: ms (max {ymax:.0})</text>"#
    );
    out += &format!(
        r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    for (i, r) in runs.iter().enumerate() {
        let color = ["#d62728", "#1f77b4", "#2ca02c"][i % 3];
        let line: Vec<String> = pts(r)
            .iter()
            .map(|p| {
                let x = pad + p[0].as_f64().unwrap_or(0.0) / xmax * (w - 2.0 * pad);
                let y = h - pad - p[1].as_f64().unwrap_or(0.0) / ymax * (h - 2.0 * pad);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        out += &format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            line.join(" ")
        );
        out += &format!(
            r#"<text x="{}" y="{}" fill="{color}">N = {}: p99 {} ms, burst drained in {} s</text>"#,
            w - 330.0,
            pad + 16.0 * i as f64,
            r["shards"],
            r["others_p99_ms"],
            r["burst_drain_s"]
        );
    }
    out + "</svg>\n"
}

//! Timeline charts as SVG, written by hand (no plotting crate, no font
//! files: the text is SVG `<text>` in a generic font family, laid out with
//! fixed offsets, so nothing needs font metrics at render time).

use std::fmt::Write as _;

pub(crate) struct Series {
    label: String,
    values: Vec<f64>,
    dashed: bool,
}

impl Series {
    pub(crate) fn new(label: String, values: Vec<f64>, dashed: bool) -> Self {
        Self {
            label,
            values,
            dashed,
        }
    }
}

const COLORS: [&str; 9] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#000000", "#8c564b", "#e377c2",
    "#7f7f7f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A step-free line chart of per-bin rates: x = seconds since the first
/// request (bin starts), y = events/s. `marks` are vertical lines (a moment
/// and its label), `lines` horizontal reference lines.
pub(crate) fn timeline(
    title: &str,
    bin_s: f64,
    series: &[Series],
    marks: &[(f64, String)],
    lines: &[(f64, String)],
) -> String {
    let (w, h) = (960.0, 480.0);
    let (left, right, top, bottom) = (70.0, 250.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let x_max = n as f64 * bin_s;
    let y_top = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .chain(lines.iter().map(|l| l.0))
        .fold(1.0, f64::max);
    let y_max = nice(y_top * 1.05);
    let x = |t: f64| left + t / x_max * pw;
    let y = |v: f64| top + ph - v / y_max * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // Axes and grid.
    for i in 0..=5 {
        let v = y_max * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{yv:.1}" y2="{yv:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"##,
            x2 = left + pw,
            yv = y(v),
            tx = left - 6.0,
            ty = y(v) + 4.0,
            label = v.round()
        );
    }
    let step = if x_max > 40.0 {
        10.0
    } else if x_max > 15.0 {
        5.0
    } else {
        2.0
    };
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#eee"/><text x="{0:.1}" y="{2}" text-anchor="middle">{t}</text>"##,
            x(t),
            top + ph,
            top + ph + 16.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since the first request (bins of {bin_s} s)</text>"#,
        left + pw / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">2xx answers per second</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
    for (v, label) in lines {
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{x2}" y1="{yv:.1}" y2="{yv:.1}" stroke="#555" stroke-dasharray="2,3"/><text x="{tx}" y="{ty:.1}" fill="#555" text-anchor="end">{label}</text>"##,
            x2 = left + pw,
            yv = y(*v),
            tx = left + pw - 4.0,
            ty = y(*v) - 4.0,
            label = esc(label)
        );
    }
    for (i, (t, label)) in marks.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#c00" stroke-width="1.5" stroke-dasharray="6,3"/><text x="{2:.1}" y="{3}" fill="#c00">{4}</text>"##,
            x(*t),
            top + ph,
            x(*t) + 4.0,
            top + 14.0 + 14.0 * i as f64,
            esc(label)
        );
    }
    for (i, ser) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> = ser
            .values
            .iter()
            .enumerate()
            .map(|(b, v)| format!("{:.1},{:.1}", x((b as f64 + 0.5) * bin_s), y(*v)))
            .collect();
        let dash = if ser.dashed {
            r#" stroke-dasharray="5,4""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.6"{dash} points="{}"/>"#,
            pts.join(" ")
        );
        let ly = top + 10.0 + 18.0 * i as f64;
        let lx = left + pw + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            esc(&ser.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round number at or above `x` (1, 2 or 5 times a power of ten).
fn nice(x: f64) -> f64 {
    let p = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= x)
        .unwrap_or(10.0 * p)
}

//! The model of single values: verdicts, timestamps, URLs, printable strings, integer-like junk.

use std::fmt::Write as _;

use webhook_worker_fuzz::url_ok;

use super::input::{Host, Junk, Stamp, Url};

/// What the model says of a field or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verdict {
    Accept,
    /// An edge the model does not decide (left to the other properties).
    Unsure,
    Reject,
}

use Verdict::{Accept, Reject, Unsure};

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's
/// `days_from_civil`): the model's own calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        _ => 28,
    }
}

/// The RFC 3339 text of a stamp, its verdict and its unix milliseconds.
pub(crate) fn stamp(s: &Stamp) -> (String, Verdict, Option<i64>) {
    let mut text = format!(
        "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
        s.year,
        s.month,
        s.day,
        if s.lower_case { 't' } else { 'T' },
        s.hour,
        s.minute,
        s.second
    );
    let mut verdict = if s.year <= 9999
        && (1..=12).contains(&s.month)
        && (1..=days_in_month(s.year, s.month)).contains(&s.day)
        && s.hour <= 23
        && s.minute <= 59
        && s.second <= 59
    {
        Accept
    } else if s.second == 60 {
        Unsure // a leap second
    } else {
        Reject
    };
    let mut nanos: i128 = 0;
    if let Some((digits, len)) = s.fraction {
        let len = usize::from(len % 12);
        let frac = format!("{digits:010}");
        let frac = &frac[frac.len() - len.min(10)..];
        let frac = format!("{frac}{}", "0".repeat(len.saturating_sub(10)));
        text.push('.');
        text.push_str(&frac);
        if len == 0 {
            verdict = Reject;
        } else if len > 9 {
            verdict = verdict.max(Unsure);
        } else {
            nanos = frac.parse::<i128>().unwrap() * 10i128.pow(9 - len as u32);
        }
    }
    let mut offset_minutes: i64 = 0;
    match s.offset {
        None if s.lower_case => text.push('z'),
        None => text.push('Z'),
        Some(m) => {
            let sign = if m < 0 { '-' } else { '+' };
            let (h, mm) = ((m.unsigned_abs() / 100), (m.unsigned_abs() % 100));
            let _ = write!(text, "{sign}{h:02}:{mm:02}");
            if h > 23 || mm > 59 {
                verdict = Reject;
            }
            offset_minutes = i64::from(h) * 60 + i64::from(mm);
            if m < 0 {
                offset_minutes = -offset_minutes;
            }
        }
    }
    if s.lower_case {
        verdict = verdict.max(Unsure);
    }
    let ms = (verdict == Accept).then(|| {
        let days = days_from_civil(s.year.into(), s.month.into(), s.day.into());
        let secs = days * 86_400
            + i64::from(s.hour) * 3600
            + i64::from(s.minute) * 60
            + i64::from(s.second)
            - offset_minutes * 60;
        let total = i128::from(secs) * 1_000_000_000 + nanos;
        (total / 1_000_000) as i64
    });
    (text, verdict, ms)
}

pub(crate) fn printable(bytes: &[u8], min: usize, max: usize, lo: u8, span: u8) -> String {
    let mut s: String = bytes
        .iter()
        .take(max)
        .map(|b| char::from(lo + b % span))
        .collect();
    while s.len() < min {
        s.push('a');
    }
    s
}

pub(crate) fn url_text(u: &Url) -> String {
    match u {
        Url::Any(s) => s.clone(),
        Url::Parts {
            scheme,
            host,
            port,
            path,
        } => {
            let scheme =
                ["http", "https", "HTTP", "ftp", "mailto", "file", "ws"][usize::from(*scheme % 7)];
            let host = match host {
                Host::Name(b) => printable(b, 1, 63, b'a', 26),
                Host::V4(o) => format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
                Host::V6(s) => format!(
                    "[{}]",
                    std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
                ),
                Host::Any(s) => s.clone(),
            };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}/{path}")
        }
    }
}

/// The model of the `url` field.
pub(crate) fn url_verdict(text: &str) -> Verdict {
    if url_ok(text) { Accept } else { Reject }
}

pub(crate) fn junk_is_integer(j: &Junk) -> Option<Option<i64>> {
    match j {
        Junk::Int(n) => Some(Some(*n)),
        Junk::Huge(n) => {
            let digits = 1 + usize::from(*n % 40);
            Some(format!("9{}", "0".repeat(digits - 1)).parse().ok())
        }
        _ => None,
    }
}

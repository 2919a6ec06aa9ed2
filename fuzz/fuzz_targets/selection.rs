//! The dead-letter selection's time bounds (`--since` / `--until`):
//! `domain::selection::parse_time_spec` over any string, then
//! `TimeSpec::resolve` over any clock. Never panics; an error has a text;
//! a timestamp agrees with RFC 3339 as the `time` crate reads it and prints
//! back to the same instant; an age is exactly what `parse_duration`
//! reads; resolving is exact (`now - age`, clamped at `i64::MIN`).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use time::format_description::well_known::Rfc3339;
use webhook_worker::domain::{
    duration::parse_duration,
    selection::{TimeSpec, parse_time_spec},
};

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let now: i64 = match u.int_in_range(0..=2)? {
        0 => u.arbitrary()?,
        1 => *u.choose(&[0, i64::MIN, i64::MAX, 1_700_000_000_000])?,
        _ => 1_700_000_000_000 + u.int_in_range(-1_000_000_000..=1_000_000_000)?,
    };
    let text = <&str>::arbitrary_take_rest(u)?;
    let trimmed = text.trim();
    match parse_time_spec(text) {
        Err(e) => {
            assert!(!e.to_string().trim().is_empty());
            assert!(parse_duration(trimmed).is_err(), "{text:?}: {e}");
        }
        Ok(TimeSpec::At(ms)) => {
            let t = time::OffsetDateTime::parse(trimmed, &Rfc3339).expect("an RFC 3339 timestamp");
            assert_eq!(i128::from(ms), t.unix_timestamp_nanos() / 1_000_000);
            let back = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("in range")
                .format(&Rfc3339)
                .expect("formats");
            assert_eq!(
                parse_time_spec(&back),
                Ok(TimeSpec::At(ms)),
                "{text:?} prints as {back:?}"
            );
            assert_eq!(TimeSpec::At(ms).resolve(now), ms);
        }
        Ok(TimeSpec::Ago(age)) => {
            assert!(time::OffsetDateTime::parse(trimmed, &Rfc3339).is_err());
            assert_eq!(parse_duration(trimmed), Ok(age));
            let want = (i128::from(now) - age.as_millis() as i128).max(i128::from(i64::MIN));
            assert_eq!(
                i128::from(TimeSpec::Ago(age).resolve(now)),
                want,
                "{text:?} ({age:?}) before {now}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

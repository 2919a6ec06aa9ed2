//! The wall clock, read in one place. The domain never reads it: its
//! functions take the time as an argument, from here.

/// Unix milliseconds now (0 if the system clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

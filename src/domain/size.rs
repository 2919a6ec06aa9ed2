//! Sizes as operators write them (`WEBHOOK_LOG_MAX_BYTES`): a number of
//! bytes, optionally with a unit, decimal (`kB`, `MB`, `GB`, `TB`) or
//! binary (`KiB`, `MiB`, `GiB`, `TiB`): `5GB`, `500MiB`, `1073741824`.

/// Why a size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size '{0}' (a positive number of bytes, optionally with a unit: 500MB, 5GB, 2GiB)"
)]
pub struct SizeError(pub String);

const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("kB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parses a positive size in bytes.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit = unit.trim();
    let n: u64 = digits.parse().map_err(|_| SizeError(s.into()))?;
    let factor = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(unit))
            .map(|(_, f)| *f)
            .ok_or_else(|| SizeError(s.into()))?
    };
    match n.checked_mul(factor) {
        Some(bytes) if bytes > 0 && bytes <= i64::MAX as u64 => Ok(bytes),
        _ => Err(SizeError(s.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size(" 2 GiB "), Ok(2 << 30));
        assert_eq!(parse_size("500mb"), Ok(500_000_000));
        for bad in ["", "0", "GB", "5XB", "-1", "1.5GB", "99999999999TB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}

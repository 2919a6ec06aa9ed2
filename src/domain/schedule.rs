//! The retry schedule (`60s*3,1h*3,24h*3`) and the retry tiers it implies.
//!
//! The schedule is the list of delays before each retry; the tiers are its
//! distinct delays, ascending, one `P.retry.<delay>` queue each. [`Tiers`]
//! is built once at start and the policy answers with a [`Tier`] index, so
//! nothing sorts, formats or searches per message.

use std::{fmt, str::FromStr, time::Duration};

use super::duration::{DurationError, format_delay, parse_ttl};

/// Upper bound of the expanded schedule, so a typo like `60s*100000000`
/// cannot allocate gigabytes.
pub const MAX_RETRIES: u64 = 1000;

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// An entry that is not `DURATION[*COUNT]`.
    #[error("invalid retry schedule entry '{0}': expected DURATION[*COUNT], e.g. 60s*3")]
    Entry(String),
    /// A schedule with no delay at all.
    #[error("retry schedule is empty")]
    Empty,
    /// A schedule too long to be meaningful.
    #[error("retry schedule expands to {0} retries; at most {MAX_RETRIES} are allowed")]
    TooManyRetries(u64),
    /// A delay that is not a usable queue TTL.
    #[error(transparent)]
    Delay(#[from] DurationError),
}

/// The retry schedule, expanded: `delays()[n-1]` is the wait after the n-th
/// failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// A schedule from its expanded delays, unchecked (the grammar's rules
    /// are enforced by parsing; this is for tests of other code).
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The expanded list of delays, one per retry.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The distinct delays, ascending: one retry queue each.
    pub fn tiers(&self) -> Tiers {
        let mut delays = self.delays.clone();
        delays.sort();
        delays.dedup();
        Tiers { delays }
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut delays = Vec::new();
        for entry in s.split(',') {
            let entry = entry.trim();
            let (duration, count) = match entry.split_once('*') {
                Some((d, c)) => {
                    let count: u64 = c
                        .trim()
                        .parse()
                        .map_err(|_| ScheduleError::Entry(entry.into()))?;
                    (d, count)
                }
                None => (entry, 1),
            };
            if entry.is_empty() || count == 0 {
                return Err(ScheduleError::Entry(entry.into()));
            }
            let delay = parse_ttl(duration)?;
            let total = (delays.len() as u64).saturating_add(count);
            if total > MAX_RETRIES {
                return Err(ScheduleError::TooManyRetries(total));
            }
            delays.extend(std::iter::repeat_n(delay, count as usize));
        }
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        Ok(Self { delays })
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = &self.delays[..];
        let mut first = true;
        while let Some(&d) = rest.first() {
            let run = rest.iter().take_while(|&&x| x == d).count();
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(&format_delay(d))?;
            if run > 1 {
                write!(f, "*{run}")?;
            }
            rest = &rest[run..];
        }
        Ok(())
    }
}

/// One retry tier: an index into [`Tiers`], 0 the shortest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tier(usize);

impl Tier {
    /// The tier's position, 0 the shortest.
    pub fn index(self) -> usize {
        self.0
    }
}

/// The distinct delays of a schedule, ascending; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    delays: Vec<Duration>,
}

impl Tiers {
    /// Every tier with its delay, shortest first.
    pub fn iter(&self) -> impl Iterator<Item = (Tier, Duration)> + '_ {
        self.delays.iter().enumerate().map(|(i, d)| (Tier(i), *d))
    }

    /// How many tiers (queues) there are.
    pub fn len(&self) -> usize {
        self.delays.len()
    }

    /// Always false: a schedule has at least one delay.
    pub fn is_empty(&self) -> bool {
        self.delays.is_empty()
    }

    /// The delay of a tier.
    pub fn delay(&self, tier: Tier) -> Duration {
        self.delays[tier.0]
    }

    /// The tier of one of the schedule's delays.
    pub fn of(&self, delay: Duration) -> Option<Tier> {
        self.delays.binary_search(&delay).ok().map(Tier)
    }

    /// The shortest tier: where a delivery is deferred without an attempt.
    pub fn shortest(&self) -> Tier {
        Tier(0)
    }

    /// The shortest tier at least `wanted` long, else the longest.
    pub fn at_least(&self, wanted: Duration) -> Tier {
        Tier(
            self.delays
                .partition_point(|d| *d < wanted)
                .min(self.delays.len() - 1),
        )
    }

    /// The queue-name suffix of a tier (`60s`, `1h`, `500ms`).
    pub fn suffix(&self, tier: Tier) -> String {
        format_delay(self.delay(tier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn default_schedule_expands_to_nine_delays() {
        let s: RetrySchedule = "60s*3,1h*3,24h*3".parse().unwrap();
        assert_eq!(
            s.delays(),
            &[MIN, MIN, MIN, HOUR, HOUR, HOUR, DAY, DAY, DAY]
        );
        let tiers = s.tiers();
        assert_eq!(
            tiers.iter().map(|(_, d)| d).collect::<Vec<_>>(),
            vec![MIN, HOUR, DAY]
        );
        assert_eq!(tiers.suffix(tiers.shortest()), "60s");
    }

    #[test]
    fn schedule_accepts_single_entries_and_spaces() {
        let s: RetrySchedule = " 200ms*2 , 500ms".parse().unwrap();
        let ms = Duration::from_millis;
        assert_eq!(s.delays(), &[ms(200), ms(200), ms(500)]);
        assert_eq!(s.to_string(), "200ms*2,500ms");
    }

    #[test]
    fn schedule_rejects_bad_entries() {
        for bad in [
            "",
            ",",
            "60s,",
            "60s*0",
            "60s*-1",
            "60s*x",
            "abc",
            "0s",
            "60s**2",
            "60s*3*2",
            "1us",
            "1ms,1ms*18446744073709551615",
            "11years",
            "60s*1001",
        ] {
            assert!(
                bad.parse::<RetrySchedule>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn tiers_are_found_by_delay_and_by_minimum() {
        let tiers = "60s*3,1h*3,24h*3".parse::<RetrySchedule>().unwrap().tiers();
        let secs = Duration::from_secs;
        assert_eq!(tiers.of(HOUR).map(Tier::index), Some(1));
        assert_eq!(tiers.of(secs(61)), None);
        assert_eq!(tiers.at_least(secs(5)).index(), 0);
        assert_eq!(tiers.at_least(secs(60)).index(), 0);
        assert_eq!(tiers.at_least(secs(61)).index(), 1);
        assert_eq!(tiers.at_least(secs(90_000)).index(), 2);
        assert_eq!(tiers.len(), 3);
    }
}

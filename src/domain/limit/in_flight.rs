//! The books of one receiver's attempts in flight: when each started, and
//! which of them are overdue.

use std::{collections::BTreeMap, time::Duration};

/// Attempts in flight by start time (a multiset: the oldest in O(log n)),
/// and how many of them started before the overdue cutoff. Overdue ones
/// hold a slot of the hard ceiling but not of the limit: a stuck outlier
/// must not eat the window, nor hung attempts block a receiver that
/// recovered.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    starts: BTreeMap<Duration, u32>,
    count: u32,
    overdue: u32,
    overdue_cutoff: Duration,
}

impl InFlight {
    /// Every attempt in flight, overdue ones included.
    pub(super) fn count(&self) -> u32 {
        self.count
    }

    /// Attempts that started before the overdue cutoff.
    pub(super) fn overdue(&self) -> u32 {
        self.overdue
    }

    /// Attempts in flight that are not overdue.
    pub(super) fn young(&self) -> u32 {
        self.count - self.overdue
    }

    /// When the oldest attempt in flight started.
    pub(super) fn oldest(&self) -> Option<Duration> {
        self.starts.first_key_value().map(|(&s, _)| s)
    }

    /// Books an attempt started at `started`.
    pub(super) fn add(&mut self, started: Duration) {
        *self.starts.entry(started).or_insert(0) += 1;
        self.count += 1;
    }

    /// Takes an attempt started at `started` off the books; false when no
    /// such attempt is in flight.
    pub(super) fn forget(&mut self, started: Duration) -> bool {
        match self.starts.get_mut(&started) {
            Some(1) => {
                self.starts.remove(&started);
            }
            Some(n) => *n -= 1,
            None => return false,
        }
        self.count -= 1;
        if started < self.overdue_cutoff {
            self.overdue -= 1;
        }
        true
    }

    /// Moves the overdue cutoff up to `cutoff` (never back): the attempts
    /// started before it become overdue. Returns the start of the newest
    /// attempt that just became overdue, if any did.
    pub(super) fn mark_overdue(&mut self, cutoff: Duration) -> Option<Duration> {
        if cutoff <= self.overdue_cutoff {
            return None;
        }
        let newly = self.starts.range(self.overdue_cutoff..cutoff);
        let (count, newest) = newly.fold((0, None), |(n, _), (&s, &c)| (n + c, Some(s)));
        self.overdue += count;
        self.overdue_cutoff = cutoff;
        newest
    }
}

//! The settler's bookkeeping under a clock passed in.

use super::*;

const L: Duration = Duration::from_millis(20);

fn ms(t0: Instant, n: u64) -> Instant {
    t0 + Duration::from_millis(n)
}

/// The plan that acks `prefix` with one `multiple` ack and `singles` alone.
fn plan(prefix: Option<(u64, u64)>, singles: &[u64]) -> AckPlan {
    AckPlan {
        prefix,
        singles: singles.to_vec(),
    }
}

#[test]
fn finished_prefix_is_one_multiple_ack() {
    let t0 = Instant::now();
    let mut p = Pending::default();
    (1..=5).for_each(|t| p.received(t, t0));
    [2, 1, 3].into_iter().for_each(|t| p.done(t, t0));
    assert_eq!(p.take_acks(t0, L), plan(Some((3, 3)), &[]));
    // 5 finished behind 4: it lingers, hoping 4 finishes soon...
    p.done(5, ms(t0, 1));
    assert_eq!(p.take_acks(ms(t0, 2), L), AckPlan::default());
    assert_eq!(
        p.next_deadline(L),
        Some(ms(t0, 20)),
        "...no longer than the blocker's age allows"
    );
    // ...and 4 does: one multiple ack for both.
    p.done(4, ms(t0, 3));
    assert_eq!(p.take_acks(ms(t0, 3), L), plan(Some((5, 2)), &[]));
    assert!(p.tags.is_empty());
    assert_eq!(p.next_deadline(L), None);
}

#[test]
fn finished_deliveries_behind_a_slow_one_wait_briefly_then_go_alone() {
    let t0 = Instant::now();
    let mut p = Pending::default();
    (1..=3).for_each(|t| p.received(t, t0));
    p.done(2, ms(t0, 5));
    // The blocker (1) has been unfinished past the linger, and 2
    // finished more than 5 ms ago: ack 2 now, alone.
    assert_eq!(p.take_acks(ms(t0, 21), L), plan(None, &[2]));
    // 4 finishes behind the slow 1: it waits 5 ms, not 20...
    p.received(4, ms(t0, 30));
    p.done(4, ms(t0, 31));
    assert_eq!(p.take_acks(ms(t0, 31), L), AckPlan::default());
    assert_eq!(p.next_deadline(L), Some(ms(t0, 36)));
    assert_eq!(p.take_acks(ms(t0, 36), L), plan(None, &[4]));
    // ...and when the slow one finishes within them, one multiple ack
    // covers all three.
    p.received(5, ms(t0, 40));
    p.done(5, ms(t0, 40));
    p.done(1, ms(t0, 42));
    p.done(3, ms(t0, 42));
    assert_eq!(p.take_acks(ms(t0, 42), L), plan(Some((5, 3)), &[]));
}

#[test]
fn a_young_blocker_is_waited_for_until_it_turns_slow() {
    let t0 = Instant::now();
    let mut p = Pending::default();
    (1..=2).for_each(|t| p.received(t, ms(t0, 10)));
    p.done(2, ms(t0, 12));
    // 1 turns slow at 30 ms; 2 has waited its 5 ms by then.
    assert_eq!(p.next_deadline(L), Some(ms(t0, 30)));
    assert_eq!(p.take_acks(ms(t0, 29), L), AckPlan::default());
    assert_eq!(p.take_acks(ms(t0, 30), L), plan(None, &[2]));
}

#[test]
fn a_hole_is_never_covered_by_a_multiple_ack() {
    let t0 = Instant::now();
    let mut p = Pending::default();
    (1..=4).for_each(|t| p.received(t, t0));
    // 2 is abandoned (never settled); 1, 3, 4 finish.
    [1, 3, 4].into_iter().for_each(|t| p.done(t, t0));
    assert_eq!(p.take_acks(ms(t0, 100), L), plan(Some((1, 1)), &[3, 4]));
    (5..=6).for_each(|t| p.received(t, ms(t0, 100)));
    [5, 6].into_iter().for_each(|t| p.done(t, ms(t0, 101)));
    // 5 and 6 sit behind the hole at 2: acked one by one, never multiple.
    assert_eq!(p.take_acks(ms(t0, 101), L), AckPlan::default());
    assert_eq!(p.take_acks(ms(t0, 106), L), plan(None, &[5, 6]));
    assert_eq!(p.tags.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(p.blocked_for(ms(t0, 106)), Duration::from_millis(106));
    // Closing flushes with no linger, and still never covers the hole.
    p.received(7, ms(t0, 200));
    p.done(7, ms(t0, 200));
    assert_eq!(p.take_acks(ms(t0, 200), Duration::ZERO), plan(None, &[7]));
}

#[test]
fn requeued_tags_leave_the_map() {
    let t0 = Instant::now();
    let mut p = Pending::default();
    (1..=3).for_each(|t| p.received(t, t0));
    p.forget(1);
    p.done(2, t0);
    assert_eq!(p.take_acks(t0, L), plan(Some((2, 1)), &[]));
}

//! The waiting rules of the per-receiver limits, under paused time: every
//! wait below is simulated, so the tests are exact and take no real time.

use super::*;
use crate::domain::{limit::Feedback, schedule::RetrySchedule};

fn limits(initial: u32, max: u32) -> Arc<ReceiverLimits> {
    let tiers = "60s".parse::<RetrySchedule>().unwrap().tiers();
    Arc::new(ReceiverLimits::new(
        LimitConfig::new(initial, 1, max),
        Metrics::new(&tiers),
    ))
}

fn granted(a: Admission<'_>) -> ReceiverSlot<'_> {
    match a {
        Admission::Granted(slot) => slot,
        Admission::Defer => panic!("expected a slot"),
    }
}

fn is_deferred(a: &Admission<'_>) -> bool {
    matches!(a, Admission::Defer)
}

fn in_flight(l: &ReceiverLimits, key: &str) -> u32 {
    l.table.lock().unwrap()[key].books().controller.in_flight()
}

fn waiting(l: &ReceiverLimits, key: &str) -> u32 {
    l.table.lock().unwrap()[key].books().view(u32::MAX).waiting
}

#[tokio::test(start_paused = true)]
async fn a_full_new_receiver_is_waited_for_then_a_stalled_one_deferred_at_once() {
    let l = limits(2, 2);
    let _a1 = granted(l.acquire("a").await);
    let _a2 = granted(l.acquire("a").await);
    // Full and too new to judge: waited for briefly, then deferred.
    let started = Instant::now();
    assert!(is_deferred(&l.acquire("a").await));
    assert_eq!(started.elapsed(), NEW_RECEIVER_WAIT);
    // Its attempts grow overdue without an answer: stalled, deferred at once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    assert!(is_deferred(&l.acquire("a").await));
    assert_eq!(started.elapsed(), Duration::ZERO);
    // Another receiver is unaffected.
    let b = granted(l.acquire("b").await);
    b.finish(Feedback::Success);
}

#[tokio::test(start_paused = true)]
async fn an_answering_receiver_is_waited_for_not_deferred() {
    let l = limits(1, 1);
    let held = granted(l.acquire("a").await);
    let l2 = l.clone();
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let got = !is_deferred(&l2.acquire("a").await);
        (got, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    held.finish(Feedback::Success);
    let (got, waited) = waiter.await.unwrap();
    assert!(got, "the waiter got the freed slot");
    assert_eq!(waited, Duration::from_millis(20));
}

#[tokio::test(start_paused = true)]
async fn a_new_receiver_that_answers_meanwhile_is_waited_for_longer() {
    let l = limits(1, 1);
    let held = granted(l.acquire("a").await);
    // Two deliveries wait; each holds the slot for 300 ms once it has it.
    let waiter = |l: Arc<ReceiverLimits>| {
        tokio::spawn(async move {
            let started = Instant::now();
            let slot = granted(l.acquire("a").await);
            let waited = started.elapsed();
            tokio::time::sleep(Duration::from_millis(300)).await;
            slot.finish(Feedback::Success);
            waited
        })
    };
    let first = waiter(l.clone());
    tokio::task::yield_now().await;
    let second = waiter(l.clone());
    tokio::task::yield_now().await;
    // The receiver answers after 400 ms: the first waiter takes the slot...
    tokio::time::sleep(Duration::from_millis(400)).await;
    held.finish(Feedback::Success);
    assert_eq!(first.await.unwrap(), Duration::from_millis(400));
    // ...and the second, no longer waiting on a receiver too new to judge,
    // waits past the 500 ms a new one gets, for the slot freed at 700 ms.
    assert_eq!(second.await.unwrap(), Duration::from_millis(700));
}

/// A receiver with ceiling 1 (its limit has nowhere to grow) that has
/// answered five attempts in 100 ms each, the last with `last`.
async fn known_at_100ms(last: Feedback) -> Arc<ReceiverLimits> {
    let l = limits(1, 1);
    for i in 0..5 {
        let slot = granted(l.acquire("a").await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        slot.finish(if i == 4 { last } else { Feedback::Success });
    }
    l
}

/// Fills the line of "a" (one slot held) with `n` waiters; then one more
/// arrival: deferred at once (true), or did it join the line (false)?
async fn one_more_than(l: &Arc<ReceiverLimits>, n: usize) -> bool {
    let _held = granted(l.acquire("a").await);
    let mut waiters = Vec::new();
    for _ in 0..=n {
        let l = l.clone();
        waiters.push(tokio::spawn(async move {
            let started = Instant::now();
            let deferred = is_deferred(&l.acquire("a").await);
            (deferred, started.elapsed())
        }));
        tokio::task::yield_now().await;
    }
    let last = waiters.pop().expect("one more");
    let joined = waiting(l, "a") == n as u32 + 1;
    for w in waiters {
        w.abort();
    }
    if joined {
        last.abort();
        return false;
    }
    let (deferred, waited) = last.await.expect("the last arrival");
    assert!(deferred && waited == Duration::ZERO);
    true
}

#[tokio::test(start_paused = true)]
async fn a_line_longer_than_the_healthy_budget_is_deferred_at_once() {
    // One slot per 100 ms: fifty waiters clear within the 5 s budget of a
    // healthy receiver; a fifty-first would wait longer than that.
    let l = known_at_100ms(Feedback::Success).await;
    assert!(one_more_than(&l, 50).await);
    let l = known_at_100ms(Feedback::Success).await;
    assert!(!one_more_than(&l, 48).await);
}

#[tokio::test(start_paused = true)]
async fn a_troubled_receivers_line_is_held_to_the_short_budget() {
    // A 503 makes it troubled: twenty waiters clear within 2 s, no more.
    let l = known_at_100ms(Feedback::Unavailable).await;
    assert!(one_more_than(&l, 20).await);
    let l = known_at_100ms(Feedback::Unavailable).await;
    assert!(!one_more_than(&l, 18).await);
}

#[tokio::test(start_paused = true)]
async fn a_slot_dropped_unfinished_is_given_back() {
    let l = limits(4, 4);
    let slot = granted(l.acquire("a").await);
    assert_eq!(in_flight(&l, "a"), 1);
    drop(slot);
    assert_eq!(in_flight(&l, "a"), 0);
}

#[tokio::test(start_paused = true)]
async fn the_table_stays_bounded_with_many_receivers() {
    let l = limits(4, 4);
    for i in 0..3 * PRUNE_ABOVE {
        let slot = granted(l.acquire(&format!("http://r{i}:80")).await);
        slot.finish(Feedback::Success);
    }
    assert!(l.table.lock().unwrap().len() <= PRUNE_ABOVE + 1);
    // Idle receivers are forgotten after a while.
    tokio::time::sleep(FORGET_AFTER + Duration::from_secs(1)).await;
    l.maintain();
    assert_eq!(l.table.lock().unwrap().len(), 0);
    assert_eq!(l.metrics.receivers.tracked.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn receivers_are_listed_busiest_first_and_at_most_a_hundred() {
    let l = limits(8, 8);
    let mut held = Vec::new();
    for i in 0..150u32 {
        for _ in 0..(i % 5) {
            held.push(granted(l.acquire(&format!("http://r{i}:80")).await));
        }
        if i % 5 == 0 {
            granted(l.acquire(&format!("http://r{i}:80")).await).finish(Feedback::Success);
        }
    }
    let page = l.page();
    assert_eq!(page.tracked, 150);
    assert_eq!(page.receivers.len(), MAX_ROWS);
    assert!(
        page.receivers
            .windows(2)
            .all(|w| w[0].in_flight >= w[1].in_flight)
    );
    assert_eq!(page.receivers[0].in_flight, 4);
    assert_eq!(page.receivers[0].state, "slow_start");
}

mod line;

#[test]
fn key_includes_default_port() {
    let u = url::Url::parse("https://Example.com/x").unwrap();
    assert_eq!(ReceiverLimits::key(&u), "https://example.com:443");
}

//! The line of a receiver, under paused time: first come, first served;
//! a healthy receiver's waiters wait their turn; a stalled receiver's line
//! is deferred at once; a waiter that leaves passes its slot on.

use std::sync::Mutex;

use super::*;

/// A delivery that arrives at `at`, holds its slot for `hold`, and records
/// its number when it gets the slot (or `None` in `deferred`).
fn delivery(
    l: &Arc<ReceiverLimits>,
    n: usize,
    hold: Duration,
    order: &Arc<Mutex<Vec<usize>>>,
) -> tokio::task::JoinHandle<(bool, Duration)> {
    let (l, order) = (l.clone(), order.clone());
    tokio::spawn(async move {
        let started = Instant::now();
        match l.acquire("a").await {
            Admission::Granted(slot) => {
                order.lock().unwrap().push(n);
                let waited = started.elapsed();
                tokio::time::sleep(hold).await;
                slot.finish(Feedback::Success);
                (true, waited)
            }
            Admission::Defer => (false, started.elapsed()),
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_freed_slot_goes_to_the_oldest_waiter_not_to_a_new_arrival() {
    let l = known_at_100ms(Feedback::Success).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = granted(l.acquire("a").await);
    let mut tasks = Vec::new();
    for n in 0..5 {
        tasks.push(delivery(&l, n, Duration::from_millis(100), &order));
        tokio::task::yield_now().await;
    }
    assert_eq!(waiting(&l, "a"), 5);
    // The slot frees; before the oldest waiter has even run, a new
    // delivery arrives: the slot is already the waiter's, the arrival
    // joins the end of the line.
    held.finish(Feedback::Success);
    assert_eq!((in_flight(&l, "a"), waiting(&l, "a")), (1, 4));
    tasks.push(delivery(&l, 99, Duration::from_millis(100), &order));
    tokio::task::yield_now().await;
    assert_eq!(waiting(&l, "a"), 5);
    for t in tasks {
        assert!(t.await.unwrap().0, "nobody is deferred");
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 99]);
}

#[tokio::test(start_paused = true)]
async fn slots_go_out_in_the_order_deliveries_arrived() {
    // Two slots, 100 ms each; a delivery every 30 ms: some find a free slot,
    // most wait. Whatever each finds, the slots go out in arrival order.
    let tiers = "60s".parse::<RetrySchedule>().unwrap().tiers();
    let l = Arc::new(ReceiverLimits::new(
        LimitConfig::new(2, 1, 2),
        Metrics::new(&tiers),
    ));
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in 0..40 {
        tasks.push(delivery(&l, n, Duration::from_millis(100), &order));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for t in tasks {
        assert!(t.await.unwrap().0, "nobody is deferred");
    }
    assert_eq!(*order.lock().unwrap(), (0..40).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn a_healthy_receivers_waiter_waits_its_turn_past_the_short_budget() {
    // One slot, 100 ms per attempt, forty waiters: the last waits about
    // 4 s, twice the budget of a troubled receiver, and is not deferred.
    let l = known_at_100ms(Feedback::Success).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = granted(l.acquire("a").await);
    let tasks: Vec<_> = (0..40)
        .map(|n| delivery(&l, n, Duration::from_millis(100), &order))
        .collect();
    tokio::task::yield_now().await;
    held.finish(Feedback::Success);
    let mut longest = Duration::ZERO;
    for t in tasks {
        let (got, waited) = t.await.unwrap();
        assert!(got, "a healthy receiver's waiter was deferred");
        longest = longest.max(waited);
    }
    assert!(longest >= 2 * WAIT_BUDGET - Duration::from_millis(100));
    assert_eq!(
        l.metrics.receivers.in_state(ReceiverState::Stalled).get(),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_receivers_line_is_deferred_as_soon_as_the_stall_is_seen() {
    let l = known_at_100ms(Feedback::Success).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let _hangs = granted(l.acquire("a").await);
    let tasks: Vec<_> = (0..3)
        .map(|n| delivery(&l, n, Duration::from_millis(100), &order))
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(waiting(&l, "a"), 3);
    // The attempt is overdue after 600 ms (6 round trips) with no answer:
    // the next look at the receiver sees the stall and defers the line.
    tokio::time::sleep(Duration::from_secs(1)).await;
    l.maintain();
    for t in tasks {
        let (got, waited) = t.await.unwrap();
        assert!(!got);
        assert_eq!(waited, Duration::from_secs(1));
    }
    assert_eq!(waiting(&l, "a"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_leaves_passes_its_slot_to_the_next() {
    let l = known_at_100ms(Feedback::Success).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = granted(l.acquire("a").await);
    let first = delivery(&l, 0, Duration::from_millis(100), &order);
    tokio::task::yield_now().await;
    let second = delivery(&l, 1, Duration::from_millis(100), &order);
    tokio::task::yield_now().await;
    // The slot is handed to the first waiter, whose task is dropped before
    // it runs (as at the end of the shutdown grace): the slot goes on.
    held.finish(Feedback::Success);
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!((in_flight(&l, "a"), waiting(&l, "a")), (1, 0));
    assert!(second.await.unwrap().0);
    assert_eq!(*order.lock().unwrap(), [1]);
    assert_eq!(in_flight(&l, "a"), 0);
}

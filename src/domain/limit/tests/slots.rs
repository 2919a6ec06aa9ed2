//! The controller's calls one at a time, without the simulator: what a
//! delivery finding no slot is told, and slots released unused,
//! restarted or granted by another controller; the labels.

use super::*;

#[test]
fn a_healthy_receiver_is_queued_for_a_troubled_one_the_wait_is_relative_to_its_latency() {
    let mut ctl = Controller::new(LimitConfig::new(1, 1, 1), Duration::ZERO);
    let Admission::Granted(t) = ctl.try_acquire(ms(0)) else {
        panic!("no slot")
    };
    ctl.finish(t, ms(40), Feedback::Success);
    ctl.tick(ms(200)); // closes the window: RTT 40 ms
    let Admission::Granted(t) = ctl.try_acquire(ms(200)) else {
        panic!("no slot")
    };
    assert_eq!(
        ctl.try_acquire(ms(201)),
        Admission::Full(WaitVerdict::Queue)
    );
    assert_eq!(ctl.rtt_estimate(), Some(ms(40)));
    // A 429 (an instant one measures no latency): troubled for 10 s.
    ctl.finish(t, ms(201), Feedback::TooManyRequests);
    let Admission::Granted(t) = ctl.try_acquire(ms(202)) else {
        panic!("no slot")
    };
    assert_eq!(
        ctl.try_acquire(ms(203)),
        Admission::Full(WaitVerdict::Wait { at_most: ms(80) })
    );
    // Answering again, and 10 s after the 429: healthy again.
    ctl.finish(t, ms(242), Feedback::Success);
    let Admission::Granted(_held) = ctl.try_acquire(ms(10_201)) else {
        panic!("no slot")
    };
    assert_eq!(
        ctl.try_acquire(ms(10_201)),
        Admission::Full(WaitVerdict::Queue)
    );
}

#[test]
fn a_slot_released_unused_teaches_nothing() {
    let mut ctl = Controller::new(LimitConfig::new(2, 1, 2), Duration::ZERO);
    let Admission::Granted(t) = ctl.try_acquire(ms(0)) else {
        panic!("no slot")
    };
    ctl.release(t);
    assert_eq!((ctl.in_flight(), ctl.rtt_estimate()), (0, None));
    ctl.tick(ms(500));
    assert_eq!(ctl.rtt_estimate(), None);
}

#[test]
fn labels_are_lowercase_and_bounded() {
    assert_eq!(ReceiverState::BackingOff.as_str(), "backing_off");
    assert_eq!(ReceiverState::SlowStart.as_str(), "slow_start");
    assert_eq!(DecreaseCause::TooManyRequests.as_str(), "too_many_requests");
    assert_eq!(DecreaseCause::LatencyRise.as_str(), "latency_rise");
}

#[test]
fn a_foreign_ticket_is_ignored() {
    let mut ctl = Controller::new(LimitConfig::default(), Duration::ZERO);
    let mut other = Controller::new(LimitConfig::default(), Duration::ZERO);
    let Admission::Granted(t) = other.try_acquire(ms(7)) else {
        panic!("no slot")
    };
    assert_eq!(ctl.finish(t, ms(8), Feedback::Timeout), Change::Unchanged);
    assert_eq!((ctl.in_flight(), ctl.limit()), (0, 16));
}

#[test]
fn a_receiver_silent_since_its_first_attempts_is_not_waited_for() {
    let mut ctl = Controller::new(LimitConfig::new(1, 1, 1), Duration::ZERO);
    let Admission::Granted(_hangs) = ctl.try_acquire(ms(0)) else {
        panic!("no slot")
    };
    // Too new to judge: a short wait...
    assert!(matches!(
        ctl.try_acquire(ms(499)),
        Admission::Full(WaitVerdict::Wait { .. })
    ));
    // ...until its first attempt is 500 ms old without an answer.
    assert_eq!(
        ctl.try_acquire(ms(500)),
        Admission::Full(WaitVerdict::Defer)
    );
    // A receiver that answered is judged by its latency instead.
    let mut ctl = Controller::new(LimitConfig::new(1, 1, 1), Duration::ZERO);
    let Admission::Granted(t) = ctl.try_acquire(ms(0)) else {
        panic!("no slot")
    };
    ctl.finish(t, ms(300), Feedback::Success);
    let Admission::Granted(_slow) = ctl.try_acquire(ms(300)) else {
        panic!("no slot")
    };
    assert_eq!(
        ctl.try_acquire(ms(900)),
        Admission::Full(WaitVerdict::Queue)
    );
}

#[test]
fn a_restarted_slot_measures_from_its_restart() {
    let mut ctl = Controller::new(LimitConfig::new(1, 1, 1), Duration::ZERO);
    let Admission::Granted(t) = ctl.try_acquire(ms(0)) else {
        panic!("no slot")
    };
    let t = ctl.restart(t, ms(60));
    assert_eq!((t.started(), ctl.in_flight()), (ms(60), 1));
    ctl.finish(t, ms(100), Feedback::Success);
    ctl.tick(ms(200));
    assert_eq!(ctl.rtt_estimate(), Some(ms(40)));
    assert_eq!(ctl.in_flight(), 0);
}

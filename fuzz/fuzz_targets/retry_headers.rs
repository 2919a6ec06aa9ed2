//! `read_retry_state` over any AMQP headers (built from arbitrary values,
//! or decoded from arbitrary wire bytes, where a key may repeat), then
//! `RetryPolicy::decide` over any outcome and clock: reading never panics
//! and matches a model of the header rules, and a retry is never scheduled
//! past the max age (`now + tier delay <= first + max age`, exactly, in
//! i128) nor outside the schedule's tiers.
#![no_main]

use std::{collections::BTreeMap, time::Duration};

use arbitrary::{Arbitrary, Unstructured};
use contract_model::amqp;
use lapin::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use libfuzzer_sys::fuzz_target;
use webhook_worker::{
    broker::retry_headers::{HEADER_ATTEMPTS, HEADER_FIRST_ATTEMPT_MS, read_retry_state},
    domain::{
        duration::MAX_TTL,
        outcome::AttemptOutcome,
        policy::{Decision, DropReason, RetryPolicy, RetryState},
        schedule::RetrySchedule,
    },
};

/// A header name: the retry headers, names near them, or anything.
#[derive(Arbitrary, Debug)]
enum Key {
    Attempts,
    FirstAttempt,
    Near(u8),
    Any(String),
}

fn key(k: &Key) -> String {
    match k {
        Key::Attempts => HEADER_ATTEMPTS.into(),
        Key::FirstAttempt => HEADER_FIRST_ATTEMPT_MS.into(),
        Key::Near(i) => [
            "x-death",
            "Webhook-Attempts",
            "webhook-attempts ",
            "webhook-last-error",
            "webhook-drop-reason",
            "webhook-first-attempt",
        ][usize::from(*i) % 6]
            .into(),
        Key::Any(s) => short(s),
    }
}

/// At most 255 bytes, cut at a character boundary: what an AMQP short
/// string can hold (`ShortString::from` panics past it).
fn short(s: &str) -> String {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Any AMQP value, nested a little.
fn value(u: &mut Unstructured<'_>, depth: u8) -> arbitrary::Result<AMQPValue> {
    let edge = [
        0i64,
        1,
        -1,
        u32::MAX as i64,
        u32::MAX as i64 + 1,
        i64::MAX,
        i64::MIN,
    ];
    Ok(match u.int_in_range(0..=19)? {
        0 => AMQPValue::ShortShortInt(u.arbitrary()?),
        1 => AMQPValue::ShortShortUInt(u.arbitrary()?),
        2 => AMQPValue::ShortInt(u.arbitrary()?),
        3 => AMQPValue::ShortUInt(u.arbitrary()?),
        4 => AMQPValue::LongInt(u.arbitrary()?),
        5 => AMQPValue::LongUInt(u.arbitrary()?),
        6 => AMQPValue::LongLongInt(u.arbitrary()?),
        7 => AMQPValue::Timestamp(u.arbitrary()?),
        8 => AMQPValue::LongLongInt(*u.choose(&edge)?),
        9 => {
            AMQPValue::Timestamp(*u.choose(&[0, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX])?)
        }
        10 => AMQPValue::Boolean(u.arbitrary()?),
        11 => AMQPValue::Float(u.arbitrary()?),
        12 => AMQPValue::Double(u.arbitrary()?),
        13 => AMQPValue::DecimalValue(DecimalValue {
            scale: u.arbitrary()?,
            value: u.arbitrary()?,
        }),
        14 => AMQPValue::ShortString(ShortString::from(short(&u.arbitrary::<String>()?))),
        15 => AMQPValue::LongString(LongString::from(u.arbitrary::<Vec<u8>>()?)),
        16 => AMQPValue::ByteArray(ByteArray::from(u.arbitrary::<Vec<u8>>()?)),
        17 if depth < 3 => {
            let n = u.int_in_range(0..=3)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(value(u, depth + 1)?);
            }
            AMQPValue::FieldArray(FieldArray::from(items))
        }
        18 if depth < 3 => AMQPValue::FieldTable(table(u, depth + 1)?),
        _ => AMQPValue::Void,
    })
}

fn table(u: &mut Unstructured<'_>, depth: u8) -> arbitrary::Result<FieldTable> {
    let mut map = BTreeMap::new();
    let n = u.int_in_range(0..=6)?;
    for _ in 0..n {
        let k: Key = u.arbitrary()?;
        let v = value(u, depth)?;
        // A later duplicate replaces the earlier, as on the wire.
        map.insert(ShortString::from(key(&k)), v);
    }
    Ok(FieldTable::from(map))
}

/// What the headers should read as, by the model: attempts a u32,
/// first-attempt a non-negative i64, absent ones defaulted.
fn model(table: &FieldTable) -> Result<RetryState, ()> {
    Ok(RetryState {
        attempts: amqp::attempts(table.inner().get(HEADER_ATTEMPTS)).ok_or(())?,
        first_attempt_ms: amqp::first_attempt_ms(table.inner().get(HEADER_FIRST_ATTEMPT_MS))
            .ok_or(())?,
    })
}

fn any_duration(u: &mut Unstructured<'_>) -> arbitrary::Result<Duration> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Duration::new(u.arbitrary()?, u.int_in_range(0..=999_999_999)?),
        1 => Duration::from_millis(u.int_in_range(0..=MAX_TTL.as_millis() as u64)?),
        2 => *u.choose(&[
            Duration::ZERO,
            Duration::MAX,
            Duration::from_millis(i64::MAX as u64),
            Duration::from_millis(i64::MAX as u64 + 1),
        ])?,
        _ => Duration::from_secs(u.int_in_range(0..=200_000)?),
    })
}

/// A schedule the grammar accepts: 1-1000 delays of whole ms, 1 ms to
/// 10 years.
fn schedule(u: &mut Unstructured<'_>) -> arbitrary::Result<RetrySchedule> {
    let n = u.int_in_range(1..=12)?;
    let mut delays = Vec::new();
    for _ in 0..n {
        let ms = match u.int_in_range(0..=2)? {
            0 => u.int_in_range(1..=MAX_TTL.as_millis() as u64)?,
            1 => *u.choose(&[
                1,
                1000,
                60_000,
                3_600_000,
                86_400_000,
                MAX_TTL.as_millis() as u64,
            ])?,
            _ => u.int_in_range(1..=100_000)?,
        };
        delays.push(Duration::from_millis(ms));
    }
    Ok(RetrySchedule::new(delays))
}

fn clock(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.arbitrary()?,
        1 => *u.choose(&[
            0,
            -1,
            1,
            i64::MIN,
            i64::MAX,
            i64::MAX - 1,
            1_700_000_000_000,
        ])?,
        2 => 1_700_000_000_000 + u.int_in_range(-100_000_000_000..=100_000_000_000)?,
        _ => i64::MAX - u.int_in_range(0..=1_000_000_000_000)?,
    })
}

fn outcome(u: &mut Unstructured<'_>) -> arbitrary::Result<AttemptOutcome> {
    Ok(match u.int_in_range(0..=4)? {
        0 => AttemptOutcome::Timeout,
        1 => AttemptOutcome::ConnectError(u.arbitrary()?),
        2 => AttemptOutcome::Gone,
        3 => AttemptOutcome::ForbiddenTarget(u.arbitrary()?),
        _ => AttemptOutcome::HttpError {
            status: u.arbitrary()?,
            retry_after: if u.arbitrary()? {
                Some(any_duration(u)?)
            } else {
                None
            },
        },
    })
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let headers: Option<FieldTable> = match u.int_in_range(0..=9)? {
        0 => None,
        1..=3 => {
            // The wire form: a length-prefixed table of any bytes.
            let len = u.int_in_range(0..=u.len())?;
            let raw = u.bytes(len)?;
            let mut framed = (raw.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(raw);
            match lapin::types::parsing::parse_field_table(framed.as_slice()) {
                Ok((_, t)) => Some(t),
                Err(_) => return Ok(()),
            }
        }
        _ => Some(table(&mut u, 0)?),
    };
    let got = read_retry_state(headers.as_ref());
    let want = headers.as_ref().map_or(Ok(RetryState::default()), model);
    match (&got, &want) {
        (Ok(g), Ok(w)) => assert_eq!(g, w, "headers {headers:?}"),
        (Err(e), Err(())) => {
            let text = e.to_string();
            assert!(
                text.contains("webhook-"),
                "error does not name the header: {text}"
            );
        }
        _ => panic!("headers {headers:?}: read {got:?}, the model says {want:?}"),
    }
    let Ok(state) = got else { return Ok(()) };

    // The retry decision for this message, as the worker makes it.
    let schedule = schedule(&mut u)?;
    let max_age = any_duration(&mut u)?;
    let now = clock(&mut u)?;
    let first = state.first_attempt_ms.unwrap_or(now);
    let outcome = outcome(&mut u)?;
    let policy = RetryPolicy::new(&schedule, max_age);
    let attempt = state.this_attempt();
    let decision = policy.decide(attempt, first, now, &outcome);
    match decision {
        Decision::Retry(tier) => {
            let delay = policy.tiers().delay(tier);
            assert!(
                schedule.delays().contains(&delay),
                "retry in {delay:?}, not a delay of the schedule"
            );
            assert!(
                !matches!(
                    outcome,
                    AttemptOutcome::Gone | AttemptOutcome::ForbiddenTarget(_)
                ),
                "{outcome:?} retried"
            );
            assert!(
                (attempt as usize) <= schedule.delays().len(),
                "attempt {attempt} retried past a schedule of {}",
                schedule.delays().len()
            );
            let due = i128::from(now) + delay.as_millis() as i128;
            let limit = i128::from(first) + max_age.as_millis().min(i64::MAX as u128) as i128;
            assert!(
                due <= limit,
                "retry due at {due} ms, after first {first} + max age {max_age:?} = {limit} \
                 (now {now}, delay {delay:?}, outcome {outcome:?})"
            );
        }
        Decision::Drop(DropReason::Gone) => assert_eq!(outcome, AttemptOutcome::Gone),
        Decision::Drop(DropReason::ForbiddenTarget) => {
            assert!(matches!(outcome, AttemptOutcome::ForbiddenTarget(_)))
        }
        Decision::Drop(DropReason::Expired) => {}
        Decision::Drop(other) => panic!("a failed attempt dropped as {other:?}"),
    }
    // A delivery deferred without an attempt obeys the same max age.
    if let Decision::Retry(tier) = policy.defer(first, now) {
        let due = i128::from(now) + policy.tiers().delay(tier).as_millis() as i128;
        let limit = i128::from(first) + max_age.as_millis().min(i64::MAX as u128) as i128;
        assert!(due <= limit, "deferral due at {due}, after {limit}");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

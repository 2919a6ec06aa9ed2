//! Properties of the retry headers: `read_retry_state` over arbitrary AMQP
//! values, against a model.

use std::collections::BTreeMap;

use lapin::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use proptest::{collection::vec, prelude::*, sample::select, test_runner::TestCaseError};
use webhook_worker::{
    broker::retry_headers::{HEADER_ATTEMPTS, HEADER_FIRST_ATTEMPT_MS, read_retry_state},
    domain::policy::RetryState,
};

use crate::{cfg, contract::amqp, json::*};

fn amqp_int() -> impl Strategy<Value = AMQPValue> {
    prop_oneof![
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u8>().prop_map(AMQPValue::ShortShortUInt),
        any::<i16>().prop_map(AMQPValue::ShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i32>().prop_map(AMQPValue::LongInt),
        any::<u32>().prop_map(AMQPValue::LongUInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        select(vec![
            0i64,
            1,
            -1,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN
        ])
        .prop_map(AMQPValue::LongLongInt),
        (-10i8..10).prop_map(AMQPValue::ShortShortInt),
        (-10i16..10).prop_map(AMQPValue::ShortInt),
        (-10i32..10).prop_map(AMQPValue::LongInt),
        (-10i64..10).prop_map(AMQPValue::LongLongInt),
        select(vec![
            0u64,
            u32::MAX as u64,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX
        ])
        .prop_map(AMQPValue::Timestamp),
    ]
}

fn amqp_value() -> impl Strategy<Value = AMQPValue> {
    let leaf = prop_oneof![
        3 => amqp_int(),
        1 => any::<bool>().prop_map(AMQPValue::Boolean),
        1 => any::<f32>().prop_map(AMQPValue::Float),
        1 => any::<f64>().prop_map(AMQPValue::Double),
        1 => (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        1 => any_string(12).prop_map(|s| AMQPValue::ShortString(ShortString::from(s))),
        1 => vec(any::<u8>(), 0..16).prop_map(|b| AMQPValue::LongString(LongString::from(b))),
        1 => select(vec!["1", "-1", "3", ""]).prop_map(|s| AMQPValue::LongString(LongString::from(s))),
        1 => vec(any::<u8>(), 0..16).prop_map(|b| AMQPValue::ByteArray(ByteArray::from(b))),
        1 => Just(AMQPValue::Void),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|v| AMQPValue::FieldArray(FieldArray::from(v))),
            vec((any_string(6), inner), 0..4).prop_map(|kv| {
                let map: BTreeMap<ShortString, AMQPValue> = kv
                    .into_iter()
                    .map(|(k, v)| (ShortString::from(k), v))
                    .collect();
                AMQPValue::FieldTable(FieldTable::from(map))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(cfg(10_000))]

    /// Any AMQP values under the retry headers' names (and near them): read
    /// exactly when they are in range, otherwise an error that says which.
    #[test]
    fn retry_headers_read_any_amqp_value(
        attempts in proptest::option::of(prop_oneof![3 => amqp_int(), 1 => amqp_value()]),
        first in proptest::option::of(prop_oneof![3 => amqp_int(), 1 => amqp_value()]),
        others in vec((select(vec!["x-death", "Webhook-Attempts", "webhook-attempts ", "webhook-last-error", "trace"]), amqp_value()), 0..4),
        absent_table in proptest::bool::weighted(0.05),
    ) {
        let mut table = FieldTable::default();
        for (k, v) in &others {
            table.insert((*k).into(), v.clone());
        }
        if let Some(v) = &attempts {
            table.insert(HEADER_ATTEMPTS.into(), v.clone());
        }
        if let Some(v) = &first {
            table.insert(HEADER_FIRST_ATTEMPT_MS.into(), v.clone());
        }
        let got = read_retry_state((!absent_table).then_some(&table)).map_err(|e| e.to_string());
        if absent_table {
            prop_assert_eq!(got, Ok(RetryState::default()));
            return Ok(());
        }
        let want_attempts = amqp::attempts(attempts.as_ref());
        let want_first = amqp::first_attempt_ms(first.as_ref());
        match (want_attempts, want_first) {
            (Some(a), Some(f)) => {
                let state = got.map_err(|e| TestCaseError::fail(format!("refused in-range headers: {e}")))?;
                prop_assert_eq!(state, RetryState { attempts: a, first_attempt_ms: f });
                prop_assert_eq!(state.this_attempt(), a.saturating_add(1));
            }
            _ => match got {
                Ok(s) => return Err(TestCaseError::fail(format!("accepted out-of-range headers as {s:?}"))),
                Err(e) => prop_assert!(e.contains("webhook-"), "error does not name the header: {:?}", e),
            },
        }
    }
}

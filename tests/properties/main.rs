//! Hostile input at scale: property tests of the pure parts of the worker.
//!
//! * `message::parse` over arbitrary bytes, over JSON-ish token soup and over
//!   mutations of valid envelopes (wrong types for every field, huge numbers,
//!   deep nesting, invalid UTF-8, odd header names and values, duplicate and
//!   unknown keys). It never panics, every rejection says why, a message that
//!   parses obeys contract section 3, and `data` comes out byte for byte.
//! * The retry schedule grammar (`RetrySchedule::from_str`, `parse_duration`)
//!   over edge durations and counts, checked against a model.
//! * `RetryState::from_headers` over arbitrary AMQP values, against a model.
//! * `RetryPolicy::decide` over any attempt, clock and outcome, against a
//!   model: a retry is always one of the schedule's tiers.
//!
//! 148,000 generated cases over 11 properties. Strings are drawn from seeds
//! and the RNG is XorShift, which keeps the whole binary to about 15 s in a
//! debug build on 2 cores (25 s on a busy machine).
//!
//! | module | what |
//! |---|---|
//! | `envelope` | parse: bytes, token soup, valid and mutated envelopes |
//! | `limits` | parse: values at section 3's limits |
//! | `schedule` | the schedule and duration grammar |
//! | `headers` | retry state from AMQP headers |
//! | `policy` | the retry decision |
//! | `contract` | the contract model (the `contract-model` crate, shared with `fuzz/`) |
//! | `json`, `valid`, `mutation`, `refusal` | shared generators and models |

mod contract;
mod envelope;
mod headers;
mod json;
mod limits;
mod mutation;
mod policy;
mod refusal;
mod schedule;
mod valid;

use proptest::{
    prelude::ProptestConfig,
    test_runner::{FileFailurePersistence, RngAlgorithm},
};

/// `WEBHOOK_MAX_MESSAGE_BYTES` used where the size limit is not under test.
const MAX: usize = 1 << 20;

/// The configuration of every property: `cases` cases.
fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep a failing run's shrinking bounded so a regression reports fast.
        max_shrink_iters: 4096,
        // ChaCha, the default, is most of the run time in debug builds.
        rng_algorithm: RngAlgorithm::XorShift,
        // Failures are saved beside each module (`schedule.rs` ->
        // `schedule.proptest-regressions`), as they were beside the single
        // file this binary was; the default would put them in
        // a `proptest-regressions` folder under `tests` now that the binary has a
        // `main.rs`.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

//! Delivery against the real broker and real receivers: bodies, headers,
//! signatures, retries through the TTL tiers, drops.

use std::time::Duration;

mod hosts;
mod requests;
mod retries;
mod sizes;

const LONG: Duration = Duration::from_secs(30);

//! Bad input never crashes the worker, never loops, never disappears: every
//! kind the contract names is parked in `P.dead` with its reason and a
//! precise `webhook-last-error`, and counted.

use std::time::Duration;

mod malformed;
mod rejected;

const LONG: Duration = Duration::from_secs(30);

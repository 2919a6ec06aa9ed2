//! The contract restated independently of the worker's `src/`: what the
//! property tests (`tests/properties/`) and the fuzz targets (`fuzz/`) hold
//! the worker to. Written from docs/contract.md, never from the code under
//! test, so a bug in one is not copied into the other.
//!
//! | module | what |
//! |---|---|
//! | [`catalog`] | the webhook catalog and the valid numbers (section 3) |
//! | [`headers`] | reserved headers, HTTP tokens and header values (section 4) |
//! | [`envelope`] | the envelope's fields and rules; checks of what `parse` returned |
//! | [`amqp`] | the retry headers as AMQP integers (section 5) |

pub mod amqp;
pub mod catalog;
pub mod envelope;
pub mod headers;

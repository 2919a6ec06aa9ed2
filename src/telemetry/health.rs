//! Readiness, shared by the worker (which knows) and the HTTP server (which
//! tells).

use std::sync::atomic::{AtomicBool, Ordering};

/// Readiness: true only while connected and consuming.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the worker consuming (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the worker is consuming.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

//! Failures that come in bursts, logged once per burst. When the
//! connection drops with hundreds of deliveries in flight, every one of
//! them fails the same way at about the same time: its ack cannot be sent,
//! or its retry/dead copy cannot be published. One WARN line with the
//! count says what happened; one per message would bury everything else.
//! A burst ends with the channel's settler ([`Unsent`]) or with the last
//! delivery task of the session ([`LostPublishes`]).

use crate::{broker::publisher::PublishError, telemetry::metrics::Metrics};

/// An ack or a nack.
#[derive(Debug, Clone, Copy)]
pub(super) enum Frame {
    /// `basic.ack`.
    Ack,
    /// `basic.nack`.
    Nack,
}

/// The settlements that could not reach the broker. A failed ack or nack
/// means the channel is gone (lapin refuses every later frame, the broker
/// redelivers everything unacked), so after the first failure nothing
/// more is sent: the rest is only counted. When the connection drops with
/// hundreds of deliveries in flight, the settler then logs one WARN line
/// with the totals when it ends, instead of one line per message.
#[derive(Debug, Default)]
pub(super) struct Unsent {
    acks: u64,
    nacks: u64,
    error: Option<String>,
}

impl Unsent {
    pub(super) fn channel_gone(&self) -> bool {
        self.error.is_some()
    }

    pub(super) fn check(
        &mut self,
        metrics: &Metrics,
        result: lapin::Result<()>,
        frame: Frame,
        n: u64,
    ) {
        if let Err(e) = result {
            self.error.get_or_insert_with(|| e.to_string());
            self.count(metrics, frame, n);
        }
    }

    pub(super) fn count(&mut self, metrics: &Metrics, frame: Frame, n: u64) {
        metrics.settle_failures.inc_by(n);
        match frame {
            Frame::Ack => self.acks += n,
            Frame::Nack => self.nacks += n,
        }
    }

    /// The one line for this channel, if anything was lost.
    pub(super) fn log(&self) {
        if let Some(error) = &self.error {
            tracing::warn!(
                acks = self.acks, nacks = self.nacks, %error,
                "{} ack(s) and {} nack(s) could not reach the broker (channel lost); the broker will redeliver those messages",
                self.acks, self.nacks
            );
        }
    }
}

/// Copies that could not be published because the session's publisher
/// channel was lost. Shared by the session's delivery tasks; when the last
/// of them is done (the value is dropped) it logs one WARN line with the
/// count, instead of one line per message.
#[derive(Debug, Default)]
pub(crate) struct LostPublishes {
    count: std::sync::atomic::AtomicU64,
    first_error: std::sync::OnceLock<String>,
}

impl LostPublishes {
    pub(super) fn record(&self, e: &PublishError) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.first_error.set(e.to_string());
    }
}

impl Drop for LostPublishes {
    fn drop(&mut self) {
        let n = *self.count.get_mut();
        if let Some(error) = self.first_error.get().filter(|_| n > 0) {
            tracing::warn!(
                messages = n, %error,
                "could not park, retry or report {n} message(s): the publisher channel was lost; they go back to the queue"
            );
        }
    }
}

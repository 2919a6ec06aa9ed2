//! A slot of one receiver, held for one attempt (RAII): given back with
//! [`ReceiverSlot::finish`], or, dropped unfinished (an attempt abandoned
//! at the end of the grace), given back as answered, so it never leaks.
//! Either way the freed slot goes to the oldest waiter of the receiver's
//! line, under the same lock.

use std::sync::Arc;

use super::{ReceiverLimits, receiver::Receiver};
use crate::domain::limit::{AttemptTicket, Feedback};

/// A slot of one receiver, held for one attempt.
#[derive(Debug)]
pub(crate) struct ReceiverSlot<'a> {
    limits: &'a ReceiverLimits,
    receiver: Arc<Receiver>,
    ticket: Option<AttemptTicket>,
}

impl<'a> ReceiverSlot<'a> {
    pub(super) fn new(
        limits: &'a ReceiverLimits,
        receiver: Arc<Receiver>,
        ticket: AttemptTicket,
    ) -> Self {
        Self {
            limits,
            receiver,
            ticket: Some(ticket),
        }
    }

    /// Gives the slot back, telling the receiver's limit how it went.
    pub(crate) fn finish(mut self, feedback: Feedback) {
        self.give_back(feedback);
    }

    fn give_back(&mut self, feedback: Feedback) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let now = self.limits.now();
        let change = {
            let mut books = self.receiver.books();
            let change = books.controller.finish(ticket, now, feedback);
            books.serve(now);
            change
        };
        self.limits.record(change);
    }
}

impl Drop for ReceiverSlot<'_> {
    fn drop(&mut self) {
        self.give_back(Feedback::OtherStatus);
    }
}

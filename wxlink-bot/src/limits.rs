//! The server's limits as it applies them (docs/architecture.md, "Send limits"),
//! enforced per bot account before a send leaves:
//!
//! - **Pacing and order**: sends of one bot go out one at a time, through
//!   one fair lock, at least [`AccountOptions::pace`] apart (1 s by
//!   default). The lock is held across the call, so the order of asking is
//!   the order on the wire, and a user's messages arrive in order.
//! - **The bot-wide throttle**: a `-2` the facade reads as the server's
//!   burst throttle ([`wxlink_client::Error::rejection`]) holds every send
//!   of this bot until the cool-down ends (1 h by default); then exactly
//!   one send is the probe. A probe that fails again doubles the cool-down
//!   (up to 24 h). The state is saved in the store, so a restart does not
//!   hot-retry. A `-2` read otherwise (text too long, no or an expired
//!   context, no known cause) fails that send only, with the facade's
//!   error and its guess; the bot goes on sending. Every guess is logged
//!   with the rule that made it.
//! - **Budgets**: replies are counted per inbound message of the user (10
//!   by default), proactive pushes per window (0 disables them).
//!
//! A send refused by policy fails with a typed error, or waits in a bounded
//! queue when [`OnRefusal::Queue`] is set; it is never dropped silently.
//!
//! This module holds the gate's state ([`Limiter`]) and the pure rules
//! (which refusal is the throttle, the throttled error); it names no
//! account state, so the account's `Shared` can hold a `Limiter`. The
//! code that applies them to an account's sends is `send`, above both.
//!
//! [`AccountOptions::pace`]: crate::AccountOptions::pace
//! [`OnRefusal::Queue`]: crate::OnRefusal::Queue

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use tokio::time::Instant;
use wxlink_client::reject::{RejectCause, RejectionGuess};

use crate::error::{Error, Kind};
use crate::options::system_time;
use crate::store::ThrottleRecord;

/// The send gate of one bot.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// When the last send started; the fair lock orders the sends.
    pub(crate) gate: tokio::sync::Mutex<Option<Instant>>,
    /// The throttle state (mirrors the store).
    throttle: Mutex<Option<ThrottleRecord>>,
    /// Sends waiting in the refusal queue.
    pub(crate) queued: AtomicUsize,
}

impl Limiter {
    /// A gate with no history and the given saved throttle.
    pub(crate) fn new(throttle: Option<ThrottleRecord>) -> Self {
        Self {
            gate: tokio::sync::Mutex::new(None),
            throttle: Mutex::new(throttle),
            queued: AtomicUsize::new(0),
        }
    }

    /// The current throttle state.
    pub(crate) fn throttle(&self) -> Option<ThrottleRecord> {
        self.throttle.lock().map(|t| *t).unwrap_or(None)
    }

    /// Replaces the throttle state.
    pub(crate) fn set_throttle(&self, record: Option<ThrottleRecord>) {
        if let Ok(mut t) = self.throttle.lock() {
            *t = record;
        }
    }

    /// Replaces the throttle state with the one loaded from the store.
    pub(crate) fn load_throttle(&self, record: Option<ThrottleRecord>) {
        self.set_throttle(record);
    }
}

/// The typed error for a throttled bot.
pub(crate) fn throttled(record: &ThrottleRecord) -> Error {
    Error::new(Kind::Throttled {
        since: system_time(record.since_ms),
        next_probe: system_time(record.next_probe_ms),
    })
}

/// The facade's reading of a `-2` refusal, if `err` is one.
pub(crate) fn rejection(err: &wxlink_client::Error) -> Option<RejectionGuess> {
    err.rejection()
}

/// True when the facade reads a refusal as the bot-wide burst throttle
/// (docs/protocol.md, "Send errors"). Only that reading stops every send
/// of the bot: an over-length text or a stale context concerns one send.
pub(crate) fn is_throttle(guess: Option<&RejectionGuess>) -> bool {
    guess.is_some_and(|g| g.cause == RejectCause::Throttled)
}

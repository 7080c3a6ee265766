//! [`Event`]: what happens to an account, for an application to log or
//! alert on ([`Host::events`](crate::Host::events)).

use std::time::SystemTime;

use crate::store::{AccountId, JournalKey};

/// One thing that happened to one account.
#[derive(Clone, Debug)]
pub struct Event {
    /// The account.
    pub account: AccountId,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// The runner holds the account's lease and polls it.
    Started {
        /// The lease's fencing epoch.
        epoch: u64,
    },
    /// Another runner holds the account; this one waits for the expiry.
    Leased {
        /// The other runner.
        owner: String,
        /// When its lease expires.
        until: SystemTime,
    },
    /// This runner lost the account's lease (another claimed it after an
    /// expiry); it stopped polling and writes nothing more.
    LeaseLost,
    /// The server answered `-14`: polling of this account stopped until
    /// [`Host::update_token`](crate::Host::update_token) gives a new token.
    SessionExpired,
    /// Polling resumed with a new token after a session expiry.
    Resumed,
    /// A send got `-2` (read as the server's bot-wide burst throttle):
    /// every send of this bot is held until `next_probe`.
    Throttled {
        /// When the throttle began.
        since: SystemTime,
        /// When one probe send will be tried.
        next_probe: SystemTime,
        /// Probes that failed so far.
        failed_probes: u32,
    },
    /// A probe went through: the bot sends again.
    ThrottleLifted,
    /// A message failed `attempts` times and moved to the dead letters.
    DeadLettered {
        /// Its journal key (for [`Host::requeue`](crate::Host::requeue)).
        key: JournalKey,
        /// The server's message id, if any.
        message_id: Option<u64>,
        /// Failed attempts.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// A poll failed; the loop backs off and tries again.
    PollFailed {
        /// The error, as text.
        error: String,
    },
    /// The account stopped (removed, or the host shut down).
    Stopped,
}

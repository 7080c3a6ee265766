//! The bridge's Prometheus metrics, kept with `prometheus-client`.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `wxlink_bridge_turns_total` | counter | `outcome`: `answered`, `deferred`, `command`, `dead_lettered`, `refused` |
//! | `wxlink_bridge_agent_errors_total` | counter | `kind`: `timeout`, `status`, `unreadable`, `transport`, `process`, `other` |
//! | `wxlink_bridge_agent_latency_seconds` | histogram | none |
//! | `wxlink_bridge_dead_letters_total` | counter | none |
//! | `wxlink_bridge_send_errors_total` | counter | none |
//! | `wxlink_bridge_throttled_accounts` | gauge | none |
//! | `wxlink_bridge_turns_in_flight` | gauge | none |

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::error::Kind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The bridge's metrics; [`Metrics::encode`] writes the Prometheus text
/// format for a `/metrics` page.
pub struct Metrics {
    registry: Mutex<Registry>,
    turns: Family<OutcomeLabel, Counter>,
    agent_errors: Family<KindLabel, Counter>,
    latency: Histogram,
    dead_letters: Counter,
    send_errors: Counter,
    replies_cut: Counter,
    media_refused: Counter,
    throttled: Gauge,
    in_flight: Gauge,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wxlink_bridge");
        let turns = Family::<OutcomeLabel, Counter>::default();
        let agent_errors = Family::<KindLabel, Counter>::default();
        // 1 ms to about 65 s.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let dead_letters = Counter::default();
        let send_errors = Counter::default();
        let replies_cut = Counter::default();
        let media_refused = Counter::default();
        let throttled = Gauge::default();
        let in_flight = Gauge::default();
        registry.register("turns", "Turns handled, by outcome", turns.clone());
        registry.register(
            "agent_errors",
            "Failed agent calls, by kind",
            agent_errors.clone(),
        );
        registry.register(
            "agent_latency_seconds",
            "Time from the agent call to its answer",
            latency.clone(),
        );
        registry.register(
            "dead_letters",
            "Turns given up after every attempt failed",
            dead_letters.clone(),
        );
        registry.register(
            "send_errors",
            "Replies the runtime could not send",
            send_errors.clone(),
        );
        registry.register(
            "replies_cut",
            "Answers longer than the reply budget, cut with a notice and held for /more",
            replies_cut.clone(),
        );
        registry.register(
            "media_refused",
            "Reply files and URLs refused (outside the media directory, a forbidden address)",
            media_refused.clone(),
        );
        registry.register(
            "throttled_accounts",
            "Accounts whose sends are stopped by the server's throttle",
            throttled.clone(),
        );
        registry.register(
            "turns_in_flight",
            "Turns being answered now",
            in_flight.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            turns,
            agent_errors,
            latency,
            dead_letters,
            send_errors,
            replies_cut,
            media_refused,
            throttled,
            in_flight,
        }
    }

    pub(crate) fn turn(&self, outcome: &'static str) {
        self.turns.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    pub(crate) fn agent_error(&self, kind: Kind) {
        let kind = match kind {
            Kind::Timeout => "timeout",
            Kind::Status => "status",
            Kind::Unreadable => "unreadable",
            Kind::Transport => "transport",
            Kind::Process => "process",
            Kind::Config
            | Kind::Io
            | Kind::Store
            | Kind::Send
            | Kind::Refused
            | Kind::MediaRefused => "other",
        };
        self.agent_errors.get_or_create(&KindLabel { kind }).inc();
    }

    pub(crate) fn latency(&self, took: Duration) {
        self.latency.observe(took.as_secs_f64());
    }

    pub(crate) fn dead_letter(&self) {
        self.dead_letters.inc();
    }

    pub(crate) fn send_error(&self) {
        self.send_errors.inc();
    }

    pub(crate) fn reply_cut(&self) {
        self.replies_cut.inc();
    }

    pub(crate) fn media_refusal(&self) {
        self.media_refused.inc();
    }

    /// How many answers were cut at the reply budget.
    pub fn replies_cut(&self) -> u64 {
        self.replies_cut.get()
    }

    /// How many reply files and URLs were refused.
    pub fn media_refused(&self) -> u64 {
        self.media_refused.get()
    }

    pub(crate) fn in_flight(&self, delta: i64) {
        self.in_flight.inc_by(delta);
    }

    /// Sets how many accounts are throttled now.
    pub fn set_throttled_accounts(&self, count: i64) {
        self.throttled.set(count);
    }

    /// How many turns ended with `outcome` (`answered`, `deferred`,
    /// `command`, `dead_lettered`, `refused`).
    pub fn turns(&self, outcome: &'static str) -> u64 {
        self.turns.get_or_create(&OutcomeLabel { outcome }).get()
    }

    /// How many turns were dead-lettered.
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.get()
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_names_every_metric() {
        let m = Metrics::new();
        m.turn("answered");
        m.agent_error(Kind::Timeout);
        m.latency(Duration::from_millis(3));
        m.dead_letter();
        let text = m.encode();
        for line in [
            "wxlink_bridge_turns_total{outcome=\"answered\"} 1",
            "wxlink_bridge_agent_errors_total{kind=\"timeout\"} 1",
            "wxlink_bridge_agent_latency_seconds_count 1",
            "wxlink_bridge_dead_letters_total 1",
            "wxlink_bridge_throttled_accounts 0",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}

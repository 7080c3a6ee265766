//! Seeded chaos: faults drawn by probability, per endpoint or for all,
//! from a random number generator of their own. The same seed and the
//! same sequence of requests give the same faults, so a failing run can be
//! repeated exactly; every drawn fault is logged.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use serde::Serialize;

use crate::fault::{FAULT_TARGETS, Fault};

/// Faults drawn at random from a seed, set with
/// [`SimBuilder::chaos`](crate::SimBuilder::chaos) or
/// [`Simulator::set_chaos`](crate::Simulator::set_chaos).
///
/// Each request of the simulated API and CDN (not the control API) is
/// matched against the rules in order; the first rule naming its endpoint
/// (or naming none, for all) decides: with its probability the request gets
/// one of its faults, chosen evenly. Faults injected with
/// [`Simulator::inject_fault`](crate::Simulator::inject_fault) come first
/// and draw nothing.
///
/// ```
/// use std::time::Duration;
/// use wxlink_sim::{Chaos, Fault};
///
/// let chaos = Chaos::new(7)
///     .endpoint("getupdates", 0.2, [Fault::LoseResponse, Fault::duplicate()])
///     .all(0.05, [Fault::HttpStatus(502, "bad gateway".into()), Fault::DropConnection]);
/// assert_eq!(chaos.rules.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Chaos {
    /// The seed of the chaos generator (independent of the simulator's own
    /// seed).
    pub seed: u64,
    /// The rules, first match wins.
    pub rules: Vec<ChaosRule>,
}

/// One rule of [`Chaos`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChaosRule {
    /// The endpoint (one of [`FAULT_TARGETS`]), or `None` for every
    /// endpoint.
    pub endpoint: Option<String>,
    /// Chance (0.0 to 1.0) that a matching request gets a fault.
    pub probability: f64,
    /// The faults to choose from, evenly.
    pub faults: Vec<Fault>,
}

impl Chaos {
    /// No rules yet, with this seed.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
        }
    }

    /// Adds a rule for one endpoint.
    pub fn endpoint(
        mut self,
        endpoint: &str,
        probability: f64,
        faults: impl IntoIterator<Item = Fault>,
    ) -> Self {
        self.rules.push(ChaosRule {
            endpoint: Some(endpoint.to_owned()),
            probability,
            faults: faults.into_iter().collect(),
        });
        self
    }

    /// Adds a rule for every endpoint (put it after the endpoint rules it
    /// should not shadow).
    pub fn all(mut self, probability: f64, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.rules.push(ChaosRule {
            endpoint: None,
            probability,
            faults: faults.into_iter().collect(),
        });
        self
    }

    /// The misbehaviour the field reports describe, each with
    /// `probability`: on `getupdates` a lost batch, a duplicate delivery
    /// (again after 1 s) and a gateway 524; on every other endpoint a 502,
    /// a dropped connection, a 503 with `Retry-After: 1` and a 200 ms delay.
    pub fn field_reports(seed: u64, probability: f64) -> Self {
        Self::new(seed)
            .endpoint(
                "getupdates",
                probability,
                [
                    Fault::LoseResponse,
                    Fault::Duplicate(vec![Duration::from_secs(1)]),
                    Fault::HttpStatus(524, "origin timeout".into()),
                ],
            )
            .all(
                probability,
                [
                    Fault::HttpStatus(502, "bad gateway".into()),
                    Fault::DropConnection,
                    Fault::unavailable(Duration::from_secs(1)),
                    Fault::Delay(Duration::from_millis(200)),
                ],
            )
    }

    /// Checks every rule: known endpoints, a probability within 0.0 to
    /// 1.0 and at least one fault.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for rule in &self.rules {
            if let Some(e) = &rule.endpoint
                && !FAULT_TARGETS.contains(&e.as_str())
            {
                return Err(format!("unknown endpoint name {e:?} in a chaos rule"));
            }
            if !(0.0..=1.0).contains(&rule.probability) {
                return Err(format!(
                    "chaos probability {} is not within 0.0 to 1.0",
                    rule.probability
                ));
            }
            if rule.faults.is_empty() {
                return Err("a chaos rule needs at least one fault".into());
            }
        }
        Ok(())
    }
}

/// One fault the chaos drew, from [`Simulator::chaos_log`](crate::Simulator::chaos_log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ChaosEvent {
    /// The number of the request among those the chaos looked at, from 1.
    pub request: u64,
    /// The endpoint it hit.
    pub endpoint: &'static str,
    /// The bot whose token the request carried, when valid.
    pub bot_id: Option<String>,
    /// The fault's kind, as the control API names it (`lose_response`, …).
    pub kind: &'static str,
    /// The fault in full (a `Json` body only by its size).
    pub fault: String,
}

/// The chaos in force and its generator.
#[derive(Debug)]
pub(crate) struct ChaosState {
    chaos: Option<Chaos>,
    rng: StdRng,
    seen: u64,
    log: VecDeque<ChaosEvent>,
    total: u64,
}

/// Most chaos events kept; older ones are dropped (the count goes on).
const LOG_LIMIT: usize = 100_000;

impl ChaosState {
    pub(crate) fn new(chaos: Option<Chaos>) -> Self {
        let seed = chaos.as_ref().map_or(0, |c| c.seed);
        Self {
            chaos,
            rng: StdRng::seed_from_u64(seed),
            seen: 0,
            log: VecDeque::new(),
            total: 0,
        }
    }

    /// Draws the fault, if any, for one request of `endpoint`.
    pub(crate) fn draw(&mut self, endpoint: &'static str, bot_id: Option<&str>) -> Option<Fault> {
        let chaos = self.chaos.as_ref()?;
        let rule = chaos
            .rules
            .iter()
            .find(|r| r.endpoint.as_deref().is_none_or(|e| e == endpoint))?;
        self.seen += 1;
        if !self.rng.random_bool(rule.probability.clamp(0.0, 1.0)) {
            return None;
        }
        let pick = self.rng.random_range(0..rule.faults.len().max(1));
        let fault = rule.faults.get(pick)?.clone();
        self.total += 1;
        if self.log.len() >= LOG_LIMIT {
            self.log.pop_front();
        }
        self.log.push_back(ChaosEvent {
            request: self.seen,
            endpoint,
            bot_id: bot_id.map(str::to_owned),
            kind: fault.kind(),
            fault: match &fault {
                Fault::Json(body) => format!("Json(<{} bytes>)", body.len()),
                other => format!("{other:?}"),
            },
        });
        Some(fault)
    }

    /// The drawn faults kept, oldest first.
    pub(crate) fn log(&self) -> Vec<ChaosEvent> {
        self.log.iter().cloned().collect()
    }

    /// Faults drawn in all.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64) -> Vec<ChaosEvent> {
        let mut st = ChaosState::new(Some(Chaos::field_reports(seed, 0.3)));
        for n in 0..200 {
            let endpoint = if n % 3 == 0 {
                "getupdates"
            } else {
                "sendmessage"
            };
            st.draw(endpoint, None);
        }
        st.log()
    }

    #[test]
    fn one_seed_gives_one_fault_sequence() {
        let a = run(1);
        assert!(a.len() > 20, "{}", a.len());
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        assert!(
            a.iter()
                .any(|e| e.endpoint == "getupdates" && e.kind == "lose_response")
        );
        assert!(
            a.iter()
                .all(|e| e.endpoint != "sendmessage" || e.kind != "lose_response")
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(
            Chaos::new(1)
                .endpoint("nope", 0.1, [Fault::DropConnection])
                .validate()
                .is_err()
        );
        assert!(
            Chaos::new(1)
                .all(1.5, [Fault::DropConnection])
                .validate()
                .is_err()
        );
        assert!(Chaos::new(1).all(0.5, []).validate().is_err());
        assert!(Chaos::field_reports(1, 0.5).validate().is_ok());
    }
}

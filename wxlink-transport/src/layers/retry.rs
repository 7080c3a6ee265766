//! Retries with a budget and jittered exponential backoff: [`RetryLayer`]
//! and [`RetryPolicy`], on tower's own retry middleware.
//!
//! This is the one retry mechanism of WxLink: API calls go through it in
//! [`ApiClient`](crate::ApiClient)'s stack, and the media crate sends CDN
//! uploads through it with a rule of its own. [`RetryLayer`] wraps a service
//! in [`tower::retry::Retry`] with a [`RetryPolicy`], which is the
//! [`tower::retry::Policy`]. The policy decides in this order:
//!
//! 1. its [`RetryRule`] says whether the finished attempt is worth
//!    repeating at all (by default [`ApiRetryRule`], below);
//! 2. no more than [`RetryPolicy::max_attempts`] attempts are made, and no
//!    new attempt starts once [`RetryPolicy::total_deadline`] would be
//!    passed;
//! 3. the retry budget (a [`TpsBudget`], shared by every clone of the
//!    policy) must allow one more retry. Each call deposits into it, each
//!    retry withdraws; when many calls fail at once the budget runs dry and
//!    the callers see their errors at once instead of piling retries onto a
//!    struggling server.
//!
//! [`ApiRetryRule`] follows the call's [`RetrySafety`] (from its
//! [`CallMeta`]):
//!
//! - [`RetrySafety::Always`]: connect failures, timeouts (except a long
//!   poll's, which is an empty poll rather than a failure), connections lost
//!   midway, and HTTP 502, 503, 504 and 524.
//! - [`RetrySafety::BeforeSend`]: only failures where the request certainly
//!   never left (connection refused, DNS, TLS, proxy). A `sendmessage` that
//!   may have reached the server is never sent again (`docs/protocol.md`,
//!   "Send errors").
//!
//! A request is repeated only when it can be copied: a buffered body is
//! cloned, and a streamed body is opened again by the [`ReplayBody`] in the
//! request's extensions, if there is one. A request whose body is a one-shot
//! stream without one is never retried.
//!
//! Each repeated attempt is the same request (method, URL, headers, body)
//! with one exception: an `X-WECHAT-UIN` header is replaced by a fresh
//! random value, because the protocol asks for a new one on every request
//! and [`IlinkHeadersLayer`](crate::layers::IlinkHeadersLayer), above this
//! layer, runs only once per call. A request without the header is
//! repeated unchanged, so the layer works on any request.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::{Instant, Sleep};
use tower::Layer;
use tower::retry::budget::{Budget, TpsBudget};

use crate::body::Body;
use crate::error::{BoxError, Failure, classify, is_retryable_status};
use crate::layers::headers::{X_WECHAT_UIN, fresh_uin};
use crate::meta::CallMeta;
use crate::proto::{RetrySafety, TimeoutClass};

/// Decides whether a finished attempt is worth repeating.
///
/// The rule only judges the outcome; the attempt limit, the deadline and
/// the budget of the [`RetryPolicy`] apply on top of it. `Res` and `E` are
/// the response and error types of the service the policy wraps, so a rule
/// may look at a fully classified outcome (the media crate's CDN upload
/// rule judges its own typed errors).
pub trait RetryRule<Res, E> {
    /// Why the attempt of the call described by `meta` that ended in
    /// `result` should be repeated (shown in the `retrying` trace event),
    /// or `None` when it must not be.
    fn retry_reason(&self, meta: &CallMeta, result: &Result<Res, E>) -> Option<Cow<'static, str>>;
}

/// The rule of iLink API calls: by the call's [`RetrySafety`], as the
/// [module documentation](self) describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiRetryRule;

impl RetryRule<Response<Body>, BoxError> for ApiRetryRule {
    fn retry_reason(
        &self,
        meta: &CallMeta,
        result: &Result<Response<Body>, BoxError>,
    ) -> Option<Cow<'static, str>> {
        let always = meta.retry == RetrySafety::Always;
        match result {
            Ok(resp) => (always && is_retryable_status(resp.status()))
                .then(|| Cow::Owned(format!("http status {}", resp.status().as_u16()))),
            Err(err) => match classify(err.as_ref()) {
                Failure::NotSent => Some(Cow::Borrowed("connect failure")),
                // A long poll that runs out of time is an empty poll, an
                // answer in itself; repeating it would only delay it.
                Failure::Timeout => (always && meta.timeout_class != TimeoutClass::LongPoll)
                    .then_some(Cow::Borrowed("timeout")),
                Failure::MaybeSent => always.then_some(Cow::Borrowed("connection lost")),
            },
        }
    }
}

/// Opens a streamed request body again for a repeated attempt.
///
/// Put it into the request's extensions next to a body that cannot be
/// cloned (a file encrypted on the fly, for example): the retry policy then
/// asks it for a fresh body each time it repeats the request, and only
/// then, so nothing is opened for a call that succeeds at once. When it
/// returns `None` the call is not repeated and the last outcome stands.
#[derive(Clone)]
pub struct ReplayBody {
    open: Arc<dyn Fn() -> Option<Body> + Send + Sync>,
}

impl ReplayBody {
    /// A replay that calls `open` for each repeated attempt.
    pub fn new(open: impl Fn() -> Option<Body> + Send + Sync + 'static) -> Self {
        Self {
            open: Arc::new(open),
        }
    }

    /// A fresh body, or `None` when the source cannot be read again.
    pub fn open(&self) -> Option<Body> {
        (self.open)()
    }
}

impl fmt::Debug for ReplayBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBody").finish_non_exhaustive()
    }
}

/// How often and how fast to retry, within which budget, by which rule.
///
/// The delay before attempt `n + 1` is `initial_backoff * 2^(n - 1)`, capped
/// at `max_backoff`, then shortened by a random fraction of up to `jitter`
/// (0.0 keeps the exact delay, 1.0 is "full jitter").
///
/// Clones share one retry budget ([`RetryPolicy::budget`]); a fresh policy
/// ([`RetryPolicy::default`], [`RetryPolicy::none`]) has a budget of its
/// own, tower's default: retries may add 20% to the calls of the last
/// 10 s, plus 10 retries per second at any rate.
///
/// As a [`tower::retry::Policy`], a policy value also counts the attempts
/// of the call it was cloned for; [`RetryLayer`] clones a fresh value for
/// every call, so a policy kept in a configuration never counts any.
#[non_exhaustive]
pub struct RetryPolicy<R = ApiRetryRule> {
    /// Attempts in total, the first included; 1 disables retries.
    pub max_attempts: u32,
    /// The delay before the second attempt.
    pub initial_backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
    /// The largest fraction (0.0 to 1.0) randomly taken off each delay.
    pub jitter: f64,
    /// No attempt starts later than this after the first one began.
    pub total_deadline: Option<Duration>,
    budget: Arc<TpsBudget>,
    rule: R,
    /// Attempts of the current call that have finished.
    finished: u32,
    /// When the current call's first attempt started.
    started: Option<Instant>,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms then 400 ms apart (minus up to half as
    /// jitter), within 60 s, with a budget of its own.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            jitter: 0.5,
            total_deadline: Some(Duration::from_secs(60)),
            budget: Arc::new(TpsBudget::default()),
            rule: ApiRetryRule,
            finished: 0,
            started: None,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            jitter: 0.0,
            total_deadline: None,
            ..Self::default()
        }
    }
}

impl<R> RetryPolicy<R> {
    /// Sets the number of attempts in total.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the first and the longest backoff.
    #[must_use]
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets the jitter fraction (clamped to 0.0..=1.0).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Sets the total deadline.
    #[must_use]
    pub fn with_total_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.total_deadline = deadline;
        self
    }

    /// Uses `budget`, which may be shared with other policies (for example
    /// the API calls' and the CDN uploads' of one client).
    #[must_use]
    pub fn with_budget(mut self, budget: Arc<TpsBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// The retry budget, shared by every clone of this policy.
    pub fn budget(&self) -> &Arc<TpsBudget> {
        &self.budget
    }

    /// The same numbers and budget with another rule.
    #[must_use]
    pub fn with_rule<R2>(self, rule: R2) -> RetryPolicy<R2> {
        RetryPolicy {
            max_attempts: self.max_attempts,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
            jitter: self.jitter,
            total_deadline: self.total_deadline,
            budget: self.budget,
            rule,
            finished: 0,
            started: None,
        }
    }

    /// The rule that judges outcomes.
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// The delay after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(31);
        let base = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter == 0.0 {
            return base;
        }
        let cut = jitter * rand::random::<f64>();
        base.mul_f64(1.0 - cut)
    }
}

impl<R: Clone> Clone for RetryPolicy<R> {
    fn clone(&self) -> Self {
        Self {
            max_attempts: self.max_attempts,
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
            jitter: self.jitter,
            total_deadline: self.total_deadline,
            budget: Arc::clone(&self.budget),
            rule: self.rule.clone(),
            finished: self.finished,
            started: self.started,
        }
    }
}

impl<R: PartialEq> PartialEq for RetryPolicy<R> {
    /// Equal numbers and rule, and the same budget.
    fn eq(&self, other: &Self) -> bool {
        self.max_attempts == other.max_attempts
            && self.initial_backoff == other.initial_backoff
            && self.max_backoff == other.max_backoff
            && self.jitter == other.jitter
            && self.total_deadline == other.total_deadline
            && Arc::ptr_eq(&self.budget, &other.budget)
            && self.rule == other.rule
    }
}

impl<R: fmt::Debug> fmt::Debug for RetryPolicy<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("jitter", &self.jitter)
            .field("total_deadline", &self.total_deadline)
            .field("budget", &self.budget)
            .field("rule", &self.rule)
            .finish()
    }
}

impl<R, Res, E> tower::retry::Policy<Request<Body>, Res, E> for RetryPolicy<R>
where
    R: RetryRule<Res, E>,
{
    type Future = Backoff;

    fn retry(&mut self, req: &mut Request<Body>, result: &mut Result<Res, E>) -> Option<Backoff> {
        self.finished += 1;
        let meta = CallMeta::of(req);
        let reason = self.rule.retry_reason(&meta, result)?;
        if self.finished >= self.max_attempts {
            return None;
        }
        let delay = self.backoff(self.finished);
        if let (Some(total), Some(started)) = (self.total_deadline, self.started)
            && started.elapsed() + delay >= total
        {
            return None;
        }
        if !self.budget.withdraw() {
            tracing::debug!(
                endpoint = meta.endpoint,
                attempt = self.finished,
                reason = %reason,
                "retry budget spent; not retrying"
            );
            return None;
        }
        if let Some(replay) = req.extensions().get::<ReplayBody>() {
            *req.body_mut() = replay.open()?;
        }
        // Every request carries its own X-WECHAT-UIN. The headers layer
        // sits above this one and runs once per call, so a repeated attempt
        // gets its fresh value here.
        if let Some(uin) = req.headers_mut().get_mut(X_WECHAT_UIN) {
            *uin = fresh_uin();
        }
        tracing::debug!(
            endpoint = meta.endpoint,
            attempt = self.finished,
            delay_ms = delay.as_millis() as u64,
            reason = %reason,
            "retrying"
        );
        tracing::Span::current().record("attempts", self.finished + 1);
        Some(Backoff::after(delay))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        if self.finished == 0 {
            // The first attempt of a call is about to start.
            self.started = Some(Instant::now());
            self.budget.deposit();
        }
        // A copy is only needed when another attempt may follow the one
        // about to be sent.
        if self.finished + 1 >= self.max_attempts {
            return None;
        }
        let body = match req.body().try_clone() {
            Some(body) => body,
            // Opened by the replay only if the attempt is repeated.
            None if req.extensions().get::<ReplayBody>().is_some() => Body::empty(),
            None => return None,
        };
        let mut copy = Request::new(body);
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

pin_project_lite::pin_project! {
    /// The wait between two attempts: nothing when the delay is zero, else
    /// a timer.
    pub struct Backoff {
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl Backoff {
    fn after(delay: Duration) -> Self {
        Self {
            sleep: (!delay.is_zero()).then(|| tokio::time::sleep(delay)),
        }
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backoff")
            .field("waiting", &self.sleep.is_some())
            .finish()
    }
}

impl Future for Backoff {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project().sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None => Poll::Ready(()),
        }
    }
}

/// Retries requests as a [`RetryPolicy`] allows.
#[derive(Debug, Clone)]
pub struct RetryLayer<R = ApiRetryRule> {
    policy: RetryPolicy<R>,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new(RetryPolicy::default())
    }
}

impl<R> RetryLayer<R> {
    /// A layer with the given policy; the services it builds share the
    /// policy's budget.
    pub const fn new(policy: RetryPolicy<R>) -> Self {
        Self { policy }
    }
}

impl<S, R: Clone> Layer<S> for RetryLayer<R> {
    type Service = Retry<S, R>;

    fn layer(&self, inner: S) -> Retry<S, R> {
        tower::retry::Retry::new(self.policy.clone(), inner)
    }
}

/// The service of [`RetryLayer`]: tower's retry middleware with a
/// [`RetryPolicy`].
pub type Retry<S, R = ApiRetryRule> = tower::retry::Retry<RetryPolicy<R>, S>;

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_without_jitter() {
        let policy = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_millis(350))
            .with_jitter(0.0);
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(3), Duration::from_millis(350));
        assert_eq!(policy.backoff(40), Duration::from_millis(350));
    }

    #[test]
    fn only_gateway_statuses_are_retryable() {
        for code in [502, 503, 504, 524] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 400, 401, 404, 429, 500, 501] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn jitter_only_shortens_the_delay() {
        let policy = RetryPolicy::default()
            .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
            .with_jitter(1.0);
        for _ in 0..100 {
            let d = policy.backoff(2);
            assert!(d <= Duration::from_millis(200), "{d:?}");
        }
    }

    #[test]
    fn clones_share_the_budget_and_fresh_policies_do_not() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.clone(), policy);
        assert!(Arc::ptr_eq(policy.clone().budget(), policy.budget()));
        assert_ne!(RetryPolicy::default(), policy);
    }
}

//! The trace pipeline's decisions (ADR 0016):
//!
//! - [`HeadSampler`] makes the head decision of every local root (a spec sampler, or the
//!   adaptive one), and with [`KeepPolicy`] on, records the roots it did not pick, and their
//!   local children, until the root ends;
//! - [`TraceSelector`] is the span processor that then keeps a root that failed or was slow,
//!   with its whole local subtree, and drops the rest, counting every decision in
//!   `sightline.traces{decision}`.

mod adaptive;
mod select;

use std::time::Duration;

use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

pub(crate) use adaptive::Adaptive;
pub use adaptive::AdaptiveSampling;
pub(crate) use select::{Export, TraceSelector};

/// The counter of decisions on traces (local roots), labelled `decision`: `sampled`,
/// `kept_error`, `kept_slow`, `dropped` (`sightline_traces_total` in Prometheus).
pub(crate) const TRACES: &str = "sightline.traces";

/// The gauge of the head sampler's current probability (`sightline_traces_sampling_ratio`),
/// labelled `http_route` (or `rpc_method`) for the adaptive sampler.
pub(crate) const SAMPLING_RATIO: &str = "sightline.traces.sampling_ratio";

/// The decisions' counters, registered once: `metrics::counter!` with a label builds its key
/// and searches the registry on every call, which a per-request decision cannot afford. The
/// recorder is installed before any span can start (`build` installs it first).
pub(crate) fn decision_counter(decision: &'static str) -> &'static metrics::Counter {
    static COUNTERS: std::sync::OnceLock<[metrics::Counter; 4]> = std::sync::OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        ["sampled", "kept_error", "kept_slow", "dropped"]
            .map(|decision| metrics::counter!(TRACES, "decision" => decision))
    });
    let index = match decision {
        "sampled" => 0,
        "kept_error" => 1,
        "kept_slow" => 2,
        _ => 3,
    };
    &counters[index]
}

/// The default threshold past which an unpicked request is kept as slow.
///
/// ```
/// assert_eq!(
///     sightline::KeepPolicy::default().slower_than_threshold(),
///     Some(sightline::DEFAULT_KEEP_SLOWER_THAN)
/// );
/// ```
pub const DEFAULT_KEEP_SLOWER_THAN: Duration = Duration::from_secs(1);

/// What is kept of the requests head sampling did not pick: those that end with a server
/// error (an HTTP 5xx, a gRPC server-error code: the span's status is Error), and those that
/// take longer than a threshold. A kept request is exported with its whole local subtree.
///
/// On by default whenever the head sampler's rate can be below 1 (ratio and adaptive
/// samplers), with errors and [`DEFAULT_KEEP_SLOWER_THAN`].
///
/// ```
/// use std::time::Duration;
/// use sightline::KeepPolicy;
///
/// let policy = KeepPolicy::default().slower_than(Some(Duration::from_millis(500)));
/// assert!(policy.keeps_errors());
/// assert_eq!(KeepPolicy::none().slower_than_threshold(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepPolicy {
    errors: bool,
    slower_than: Option<Duration>,
}

impl Default for KeepPolicy {
    fn default() -> Self {
        Self {
            errors: true,
            slower_than: Some(DEFAULT_KEEP_SLOWER_THAN),
        }
    }
}

impl KeepPolicy {
    /// Keeps nothing head sampling did not pick.
    pub const fn none() -> Self {
        Self {
            errors: false,
            slower_than: None,
        }
    }

    /// Whether requests that end with a server error are kept.
    #[must_use]
    pub const fn errors(mut self, keep: bool) -> Self {
        self.errors = keep;
        self
    }

    /// The threshold past which a request is kept as slow; `None` keeps none for being slow.
    #[must_use]
    pub const fn slower_than(mut self, threshold: Option<Duration>) -> Self {
        self.slower_than = threshold;
        self
    }

    /// Whether server errors are kept.
    pub const fn keeps_errors(&self) -> bool {
        self.errors
    }

    /// The slow threshold, if any.
    pub const fn slower_than_threshold(&self) -> Option<Duration> {
        self.slower_than
    }

    /// Whether anything is kept.
    pub(crate) const fn is_on(&self) -> bool {
        self.errors || self.slower_than.is_some()
    }
}

/// The head decision.
#[derive(Clone, Debug)]
pub(crate) enum Head {
    /// One of the specification's samplers.
    Spec(Sampler),
    /// Ours, per route; `parent_based` honours a remote parent's decision.
    Adaptive {
        adaptive: std::sync::Arc<Adaptive>,
        parent_based: bool,
    },
}

impl Head {
    /// Whether the head rate can be below 1 (but above 0), which turns [`KeepPolicy`] on by
    /// default.
    pub(crate) fn can_drop(&self) -> bool {
        match self {
            Self::Spec(_) => self.fixed_ratio().is_none_or(|r| r > 0.0 && r < 1.0),
            Self::Adaptive { .. } => true,
        }
    }

    /// The unlabelled ratio gauge's value, for the spec samplers whose rate is fixed.
    pub(crate) fn fixed_ratio(&self) -> Option<f64> {
        match self {
            Self::Spec(sampler) => spec_ratio(sampler),
            Self::Adaptive { .. } => None,
        }
    }
}

/// The rate of a spec sampler; a parent-based one's root is boxed as `dyn ShouldSample`,
/// known only by its `Debug` text (`TraceIdRatioBased(0.1)`).
fn spec_ratio(sampler: &Sampler) -> Option<f64> {
    match sampler {
        Sampler::AlwaysOn => Some(1.0),
        Sampler::AlwaysOff => Some(0.0),
        Sampler::TraceIdRatioBased(ratio) => Some(ratio.clamp(0.0, 1.0)),
        Sampler::ParentBased(root) => {
            let text = format!("{root:?}");
            match text.as_str() {
                "AlwaysOn" => Some(1.0),
                "AlwaysOff" => Some(0.0),
                _ => text
                    .strip_prefix("TraceIdRatioBased(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|r| r.parse::<f64>().ok())
                    .map(|r| r.clamp(0.0, 1.0)),
            }
        }
        _ => None,
    }
}

/// The provider's sampler: the head decision for local roots, and for a span under a local
/// parent, the parent's fate: sampled, recorded until its root decides, or dropped.
#[derive(Clone, Debug)]
pub(crate) struct HeadSampler {
    head: Head,
    /// Record the local roots the head did not pick, for [`TraceSelector`] to decide.
    record_unpicked: bool,
}

impl HeadSampler {
    pub(crate) fn new(head: Head, keep: KeepPolicy) -> Self {
        Self {
            head,
            record_unpicked: keep.is_on(),
        }
    }
}

impl ShouldSample for HeadSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if let Some(cx) = parent_context.filter(|cx| cx.has_active_span()) {
            let parent = cx.span();
            let ids = parent.span_context();
            if ids.is_valid() && !ids.is_remote() {
                let decision = if ids.is_sampled() {
                    SamplingDecision::RecordAndSample
                } else if self.record_unpicked && parent.is_recording() {
                    // The local root is recorded until it ends: its children too, so that a
                    // kept root keeps its subtree.
                    SamplingDecision::RecordOnly
                } else {
                    SamplingDecision::Drop
                };
                return SamplingResult {
                    decision,
                    attributes: Vec::new(),
                    trace_state: ids.trace_state().clone(),
                };
            }
        }
        let result = match &self.head {
            Head::Spec(sampler) => {
                sampler.should_sample(parent_context, trace_id, name, span_kind, attributes, links)
            }
            Head::Adaptive {
                adaptive,
                parent_based,
            } => adaptive.should_sample(parent_context, *parent_based, trace_id, name, attributes),
        };
        match result.decision {
            SamplingDecision::RecordAndSample => result,
            _ if self.record_unpicked => SamplingResult {
                decision: SamplingDecision::RecordOnly,
                ..result
            },
            _ => {
                decision_counter("dropped").increment(1);
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        Span as _, SpanContext, SpanId, TraceFlags, TraceState, Tracer as _, TracerProvider as _,
    };
    use opentelemetry_sdk::trace::SdkTracerProvider;

    fn decide(sampler: &HeadSampler, parent: Option<&Context>) -> SamplingDecision {
        sampler
            .should_sample(
                parent,
                TraceId::from(7),
                "GET /",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision
    }

    #[test]
    fn unpicked_roots_are_recorded_only_when_something_is_kept() {
        let never = Head::Spec(Sampler::TraceIdRatioBased(0.0));
        assert_eq!(
            decide(
                &HeadSampler::new(never.clone(), KeepPolicy::default()),
                None
            ),
            SamplingDecision::RecordOnly
        );
        assert_eq!(
            decide(&HeadSampler::new(never, KeepPolicy::none()), None),
            SamplingDecision::Drop
        );
        let always = Head::Spec(Sampler::AlwaysOn);
        assert_eq!(
            decide(&HeadSampler::new(always, KeepPolicy::default()), None),
            SamplingDecision::RecordAndSample
        );
    }

    #[test]
    fn a_remote_parent_is_honoured_under_parent_based() {
        let head = Head::Spec(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        let sampler = HeadSampler::new(head, KeepPolicy::none());
        let remote = |flags| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from(7),
                SpanId::from(1),
                flags,
                true,
                TraceState::NONE,
            ))
        };
        assert_eq!(
            decide(&sampler, Some(&remote(TraceFlags::SAMPLED))),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide(&sampler, Some(&remote(TraceFlags::default()))),
            SamplingDecision::Drop
        );
    }

    #[test]
    fn children_follow_their_local_root() {
        let sampler = HeadSampler::new(
            Head::Spec(Sampler::TraceIdRatioBased(0.0)),
            KeepPolicy::default(),
        );
        let provider = SdkTracerProvider::builder()
            .with_sampler(sampler.clone())
            .build();
        let tracer = provider.tracer("test");
        let root = tracer.start("root");
        assert!(root.is_recording() && !root.span_context().is_sampled());
        let cx = Context::new().with_span(root);
        assert_eq!(decide(&sampler, Some(&cx)), SamplingDecision::RecordOnly);

        let sampled = Context::new().with_span(
            SdkTracerProvider::builder()
                .build()
                .tracer("test")
                .start("root"),
        );
        assert_eq!(
            decide(&sampler, Some(&sampled)),
            SamplingDecision::RecordAndSample
        );

        let dropping = HeadSampler::new(
            Head::Spec(Sampler::TraceIdRatioBased(0.0)),
            KeepPolicy::none(),
        );
        let dropped = Context::new().with_span(
            SdkTracerProvider::builder()
                .with_sampler(dropping.clone())
                .build()
                .tracer("test")
                .start("root"),
        );
        assert_eq!(decide(&dropping, Some(&dropped)), SamplingDecision::Drop);
    }

    #[test]
    fn keep_is_on_by_default_only_where_the_head_can_drop() {
        assert!(Head::Spec(Sampler::TraceIdRatioBased(0.1)).can_drop());
        assert!(
            Head::Spec(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                0.5
            ))))
            .can_drop()
        );
        assert!(!Head::Spec(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))).can_drop());
        assert!(!Head::Spec(Sampler::AlwaysOff).can_drop());
        assert_eq!(
            Head::Spec(Sampler::TraceIdRatioBased(0.25)).fixed_ratio(),
            Some(0.25)
        );
    }
}

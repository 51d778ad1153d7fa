//! The span processor in front of every other: it holds each local trace until its root
//! ends, then hands it on whole (sampled, or unpicked but kept as an error or as slow) or
//! drops it whole, counting the decision; and it admits whole traces to the export queue,
//! ordinary ones only while a quarter of the queue is still free, so that errors and slow
//! requests are the last to be dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

use super::{Adaptive, KeepPolicy};

/// Most spans held for roots that have not ended; past it, the oldest trace gives way.
const MAX_PENDING_SPANS: usize = 8192;
/// How many decided traces are remembered, for children that end after their root.
const DECIDED: usize = 65_536;
/// How long a child waits for its root: then a sampled trace's spans go on without it (the
/// root ended long ago and was forgotten, or it is a long stream), an unsampled one's are
/// dropped.
const ROOT_WAIT: Duration = Duration::from_secs(30);

/// Why a trace goes on, or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Sampled,
    KeptError,
    KeptSlow,
    Dropped,
}

impl Decision {
    fn label(self) -> &'static str {
        match self {
            Self::Sampled => "sampled",
            Self::KeptError => "kept_error",
            Self::KeptSlow => "kept_slow",
            Self::Dropped => "dropped",
        }
    }

    const ALL: [Self; 4] = [
        Self::Sampled,
        Self::KeptError,
        Self::KeptSlow,
        Self::Dropped,
    ];

    fn exported(self) -> bool {
        self != Self::Dropped
    }

    /// Errors and slow requests may fill the queue; the others leave a quarter free.
    fn reserve(self, capacity: usize) -> usize {
        match self {
            Self::Sampled => capacity / 4,
            _ => 0,
        }
    }
}

/// The export processor and its queue's budget, admitting whole traces.
#[cfg(feature = "otlp")]
pub(crate) struct Export {
    pub(crate) processor: Box<dyn SpanProcessor>,
    pub(crate) budget: Arc<sightline_otlp::DropBudget>,
}

/// Without the `otlp` feature there is no export queue.
#[cfg(not(feature = "otlp"))]
pub(crate) enum Export {}

#[cfg(feature = "otlp")]
impl Export {
    fn processor(&self) -> &dyn SpanProcessor {
        &*self.processor
    }

    fn processor_mut(&mut self) -> &mut dyn SpanProcessor {
        &mut *self.processor
    }

    /// Takes places for a whole trace of `spans`, leaving `reserve` free; counts a refusal.
    fn admit(&self, spans: usize, reserve: usize) -> bool {
        self.budget.admit_trace(spans, reserve)
    }

    fn capacity(&self) -> usize {
        self.budget.capacity()
    }

    /// How full the queue is, for the adaptive sampler's overload.
    pub(crate) fn fill(&self) -> Arc<dyn Fn() -> f64 + Send + Sync> {
        let budget = Arc::clone(&self.budget);
        Arc::new(move || budget.fill())
    }
}

#[cfg(not(feature = "otlp"))]
impl Export {
    fn processor(&self) -> &dyn SpanProcessor {
        match *self {}
    }

    fn processor_mut(&mut self) -> &mut dyn SpanProcessor {
        match *self {}
    }

    fn admit(&self, _: usize, _: usize) -> bool {
        match *self {}
    }

    fn capacity(&self) -> usize {
        match *self {}
    }

    pub(crate) fn fill(&self) -> Arc<dyn Fn() -> f64 + Send + Sync> {
        match *self {}
    }
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// The counter of lost telemetry: `sightline_otlp::DROPPED`, named here too for a build
/// without the `otlp` feature (a test checks that the two agree).
pub(crate) const DROPPED: &str = "sightline.telemetry.dropped";

/// The decisions of recent roots, for children that end after them: a slot per trace id's
/// low bits, holding a tag of the id and the decision in one atomic word, so a root records
/// its decision without a lock. A newer trace on the same slot replaces an older one.
struct Decided {
    slots: Box<[std::sync::atomic::AtomicU64]>,
}

impl Decided {
    fn new() -> Self {
        Self {
            slots: (0..DECIDED)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        }
    }

    /// The slot of `trace`, and its tag: the id folded to 61 bits, never zero.
    fn slot(&self, trace: TraceId) -> (&std::sync::atomic::AtomicU64, u64) {
        let id = u128::from_be_bytes(trace.to_bytes());
        #[allow(clippy::cast_possible_truncation)]
        let (high, low) = ((id >> 64) as u64, id as u64);
        #[allow(clippy::cast_possible_truncation)]
        let index = (low as usize) & (DECIDED - 1);
        let tag = ((high ^ low.rotate_left(29)) << 3) | 1 << 63;
        (&self.slots[index], tag)
    }

    fn record(&self, trace: TraceId, decision: Decision) {
        let (slot, tag) = self.slot(trace);
        let code = Decision::ALL
            .iter()
            .position(|d| *d == decision)
            .unwrap_or(3) as u64
            + 1;
        debug_assert!((1..=4).contains(&code));
        slot.store(tag | code, Ordering::SeqCst);
    }

    fn get(&self, trace: TraceId) -> Option<Decision> {
        let (slot, tag) = self.slot(trace);
        let value = slot.load(Ordering::SeqCst);
        if value & !7 != tag {
            return None;
        }
        #[allow(clippy::cast_possible_truncation)]
        Decision::ALL
            .get(((value & 7) as usize).checked_sub(1)?)
            .copied()
    }
}

/// Trace ids are random: their low bits are hash enough (SipHash would cost more than the
/// rest of a lookup).
#[derive(Clone, Copy, Default)]
struct TraceIdHash(u64);

impl std::hash::Hasher for TraceIdHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, value: u128) {
        #[allow(clippy::cast_possible_truncation)]
        {
            self.0 ^= value as u64 ^ (value >> 64) as u64;
        }
    }
}

type TraceMap<V> = HashMap<TraceId, V, std::hash::BuildHasherDefault<TraceIdHash>>;

#[derive(Default)]
struct Pending {
    /// The ended spans of each trace whose local root is still running, and when the first
    /// of them ended.
    traces: TraceMap<(Instant, Vec<SpanData>)>,
    spans: usize,
    /// The pending traces, oldest first (with some already decided, skipped on eviction).
    order: VecDeque<TraceId>,
}

/// See the module's documentation.
pub(crate) struct TraceSelector {
    keep: KeepPolicy,
    adaptive: Option<Arc<Adaptive>>,
    export: Option<Export>,
    /// The console exporter and the debug page's recent spans: they see what is exported.
    others: Vec<Box<dyn SpanProcessor>>,
    pending: Mutex<Pending>,
    decided: Decided,
    /// How many traces have spans pending: the root of a trace without children skips the
    /// lock while it is zero.
    pending_traces: AtomicUsize,
}

impl std::fmt::Debug for TraceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceSelector")
            .field("keep", &self.keep)
            .field("export", &self.export)
            .finish_non_exhaustive()
    }
}

impl TraceSelector {
    pub(crate) fn new(
        keep: KeepPolicy,
        adaptive: Option<Arc<Adaptive>>,
        export: Option<Export>,
        others: Vec<Box<dyn SpanProcessor>>,
    ) -> Self {
        Self {
            keep,
            adaptive,
            export,
            others,
            pending: Mutex::new(Pending::default()),
            decided: Decided::new(),
            pending_traces: AtomicUsize::new(0),
        }
    }

    fn decide(&self, root: &SpanData) -> Decision {
        if root.span_context.is_sampled() {
            return Decision::Sampled;
        }
        if self.keep.keeps_errors() && matches!(root.status, Status::Error { .. }) {
            return Decision::KeptError;
        }
        let duration = root
            .end_time
            .duration_since(root.start_time)
            .unwrap_or(Duration::ZERO);
        match self.keep.slower_than_threshold() {
            Some(threshold) if duration >= threshold => Decision::KeptSlow,
            _ => Decision::Dropped,
        }
    }

    /// Hands a decided trace on: whole to the export queue (or dropped whole when it has no
    /// room), and to the other processors.
    fn hand_on(&self, decision: Decision, spans: Vec<SpanData>) {
        self.hand_on_with(decision, spans, None);
    }

    /// [`hand_on`](Self::hand_on) for `children` and a `last` span apart, so that a trace of
    /// one span (most of them) is handed on without a `Vec`.
    fn hand_on_with(
        &self,
        decision: Decision,
        mut children: Vec<SpanData>,
        mut last: Option<SpanData>,
    ) {
        if !decision.exported() {
            return;
        }
        if decision != Decision::Sampled {
            for span in children.iter_mut().chain(last.as_mut()) {
                span.span_context = sampled(&span.span_context);
            }
        }
        for other in &self.others {
            for span in children.iter().chain(last.as_ref()) {
                other.on_end(span.clone());
            }
        }
        if let Some(export) = &self.export {
            let count = children.len() + usize::from(last.is_some());
            let reserve = decision.reserve(export.capacity());
            if export.admit(count, reserve) {
                for span in children.into_iter().chain(last) {
                    export.processor().on_end(span);
                }
            }
        }
    }

    /// Holds a child until its root decides, or hands it on after a root that has decided.
    fn hold(&self, trace: TraceId, span: SpanData) {
        if let Some(decision) = self.decided.get(trace) {
            self.hand_on_with(decision, Vec::new(), Some(span));
            return;
        }
        let now = Instant::now();
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        // Counted before the second look: a root that records its decision after this sees a
        // child may be waiting and takes the lock (the two use sequentially consistent order).
        self.pending_traces.fetch_add(1, Ordering::SeqCst);
        if let Some(decision) = self.decided.get(trace) {
            self.pending_traces.fetch_sub(1, Ordering::SeqCst);
            drop(pending);
            self.hand_on_with(decision, Vec::new(), Some(span));
            return;
        }
        // The oldest traces give way when too many spans wait, or when they have waited
        // longer than any root should take.
        let mut released = Vec::new();
        while let Some(&oldest) = pending.order.front() {
            let stale = pending
                .traces
                .get(&oldest)
                .is_some_and(|(since, _)| now.duration_since(*since) >= ROOT_WAIT);
            if pending.spans < MAX_PENDING_SPANS && !stale && pending.traces.contains_key(&oldest) {
                break;
            }
            pending.order.pop_front();
            if let Some((_, spans)) = pending.traces.remove(&oldest) {
                pending.spans -= spans.len();
                self.pending_traces.fetch_sub(1, Ordering::SeqCst);
                released.push(spans);
            }
        }
        pending.spans += 1;
        let entry = pending
            .traces
            .entry(trace)
            .or_insert_with(|| (now, Vec::new()));
        let new = entry.1.is_empty();
        entry.1.push(span);
        if new {
            pending.order.push_back(trace);
            if pending.order.len() > 2 * pending.traces.len() + 64 {
                let Pending { order, traces, .. } = &mut *pending;
                order.retain(|t| traces.contains_key(t));
            }
        } else {
            // The trace was counted already.
            self.pending_traces.fetch_sub(1, Ordering::SeqCst);
        }
        drop(pending);
        for spans in released {
            // A sampled trace's root was sampled: its spans go on without it.
            if spans.iter().all(|s| s.span_context.is_sampled()) {
                self.hand_on(Decision::Sampled, spans);
            } else {
                metrics::counter!(
                    DROPPED,
                    "signal" => "spans",
                    "reason" => "pending_full"
                )
                .increment(spans.len() as u64);
            }
        }
    }
}

/// The same span context with the sampled flag: a kept trace is exported as sampled.
fn sampled(ids: &SpanContext) -> SpanContext {
    SpanContext::new(
        ids.trace_id(),
        ids.span_id(),
        TraceFlags::new(ids.trace_flags().to_u8() | TraceFlags::SAMPLED.to_u8()),
        ids.is_remote(),
        ids.trace_state().clone(),
    )
}

impl SpanProcessor for TraceSelector {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        for other in &self.others {
            other.on_start(span, cx);
        }
        if let Some(export) = &self.export {
            export.processor().on_start(span, cx);
        }
    }

    fn on_end(&self, span: SpanData) {
        let trace = span.span_context.trace_id();
        let local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        if !local_root {
            self.hold(trace, span);
            return;
        }

        let decision = self.decide(&span);
        if let Some(adaptive) = &self.adaptive {
            let duration = span
                .end_time
                .duration_since(span.start_time)
                .unwrap_or(Duration::ZERO);
            adaptive.observe(
                &span.name,
                &span.attributes,
                matches!(span.status, Status::Error { .. }),
                duration,
            );
        }
        super::decision_counter(decision.label()).increment(1);
        // Recorded before looking for children: a child that comes after finds it.
        self.decided.record(trace, decision);
        let children = if self.pending_traces.load(Ordering::SeqCst) == 0 {
            Vec::new()
        } else {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            match pending.traces.remove(&trace) {
                Some((_, children)) => {
                    pending.spans -= children.len();
                    self.pending_traces.fetch_sub(1, Ordering::SeqCst);
                    children
                }
                None => Vec::new(),
            }
        };
        self.hand_on_with(decision, children, Some(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        let mut result = Ok(());
        for other in &self.others {
            result = result.and(other.force_flush());
        }
        if let Some(export) = &self.export {
            result = result.and(export.processor().force_flush());
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let mut result = Ok(());
        for other in &self.others {
            result = result.and(other.shutdown_with_timeout(timeout));
        }
        if let Some(export) = &self.export {
            result = result.and(export.processor().shutdown_with_timeout(timeout));
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        for other in &mut self.others {
            other.set_resource(resource);
        }
        if let Some(export) = &mut self.export {
            export.processor_mut().set_resource(resource);
        }
    }
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use std::time::SystemTime;

    use opentelemetry::trace::{SpanKind, TraceState};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SimpleSpanProcessor};

    use super::*;

    fn span(trace: u128, id: u64, parent: u64, sampled: bool, status: Status, ms: u64) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                false,
                TraceState::NONE,
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: format!("span {id}").into(),
            start_time: start,
            end_time: start + Duration::from_millis(ms),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn decisions_are_found_by_their_trace_and_replaced_on_their_slot() {
        let decided = Decided::new();
        let (a, b) = (
            TraceId::from(0xabc_u128 << 64 | 7),
            TraceId::from(0xdef_u128 << 64 | 7),
        );
        assert_eq!(decided.get(a), None);
        decided.record(a, Decision::KeptSlow);
        assert_eq!(decided.get(a), Some(Decision::KeptSlow));
        // Same slot (same low bits), another trace: it takes the slot over.
        assert_eq!(decided.get(b), None);
        decided.record(b, Decision::Dropped);
        assert_eq!(
            (decided.get(a), decided.get(b)),
            (None, Some(Decision::Dropped))
        );
    }

    #[test]
    fn no_child_is_left_waiting_when_it_races_its_root() {
        // Children and roots of the same traces end on two threads at once, in no order:
        // every child is either taken by its root or finds the root's decision.
        const TRACES: u64 = 5000;
        let (selector, exporter) = selector(KeepPolicy::default(), 1_000_000);
        let selector = std::sync::Arc::new(selector);
        let children = {
            let selector = std::sync::Arc::clone(&selector);
            std::thread::spawn(move || {
                for t in 1..=TRACES {
                    selector.on_end(span(
                        u128::from(t),
                        t * 10 + 1,
                        t * 10,
                        false,
                        Status::Unset,
                        1,
                    ));
                }
            })
        };
        for t in 1..=TRACES {
            // Every third trace failed: kept with its child.
            let status = if t % 3 == 0 {
                Status::error("500")
            } else {
                Status::Unset
            };
            selector.on_end(span(u128::from(t), t * 10, 0, false, status, 1));
        }
        children.join().expect("children");
        assert_eq!(selector.pending.lock().expect("lock").spans, 0);
        assert_eq!(selector.pending_traces.load(Ordering::SeqCst), 0);
        assert_eq!(exported(&exporter).len() as u64, 2 * (TRACES / 3));
    }

    #[test]
    fn the_dropped_counter_is_the_otlp_crates() {
        assert_eq!(DROPPED, sightline_otlp::DROPPED);
    }

    fn selector(keep: KeepPolicy, capacity: usize) -> (TraceSelector, InMemorySpanExporter) {
        let exporter = InMemorySpanExporter::default();
        let budget = sightline_otlp::DropBudget::new("spans", capacity);
        let selector = TraceSelector::new(
            keep,
            None,
            Some(Export {
                processor: Box::new(SimpleSpanProcessor::new(exporter.clone())),
                budget,
            }),
            Vec::new(),
        );
        (selector, exporter)
    }

    fn exported(exporter: &InMemorySpanExporter) -> Vec<(u64, bool)> {
        let mut spans: Vec<_> = exporter
            .get_finished_spans()
            .expect("spans")
            .iter()
            .map(|s| {
                (
                    u64::from_be_bytes(s.span_context.span_id().to_bytes()),
                    s.span_context.is_sampled(),
                )
            })
            .collect();
        spans.sort_unstable();
        spans
    }

    #[test]
    fn an_unpicked_error_is_kept_with_its_subtree_and_an_ok_one_dropped_whole() {
        let (selector, exporter) = selector(KeepPolicy::default(), 100);
        // Trace 1 fails: its child ended first, and both go out, as sampled.
        selector.on_end(span(1, 11, 10, false, Status::Unset, 1));
        selector.on_end(span(1, 10, 0, false, Status::error("500"), 2));
        // Trace 2 is fine and fast: nothing of it goes out.
        selector.on_end(span(2, 21, 20, false, Status::Unset, 1));
        selector.on_end(span(2, 20, 0, false, Status::Unset, 2));
        // Trace 3 is slow.
        selector.on_end(span(3, 30, 0, false, Status::Unset, 1500));
        assert_eq!(
            exported(&exporter),
            vec![(10, true), (11, true), (30, true)]
        );
        // A late child of the kept trace follows it; one of the dropped trace does not.
        selector.on_end(span(1, 12, 10, false, Status::Unset, 1));
        selector.on_end(span(2, 22, 20, false, Status::Unset, 1));
        assert_eq!(exported(&exporter).len(), 4);
        assert_eq!(selector.pending.lock().expect("lock").spans, 0);
        // A sampled child of a sampled root that ended first goes on too.
        selector.on_end(span(4, 40, 0, true, Status::Unset, 1));
        selector.on_end(span(4, 41, 40, true, Status::Unset, 1));
        assert!(exported(&exporter).contains(&(41, true)));
    }

    #[test]
    fn nothing_is_kept_when_the_policy_keeps_nothing() {
        let (selector, exporter) = selector(KeepPolicy::none(), 100);
        selector.on_end(span(1, 10, 0, false, Status::error("500"), 5000));
        selector.on_end(span(2, 20, 0, true, Status::Unset, 1));
        assert_eq!(exported(&exporter), vec![(20, true)]);
    }

    #[test]
    fn a_full_queue_drops_whole_traces_ordinary_ones_first() {
        // A queue of 4: an ordinary trace may use 3 places, an error all 4.
        let (selector, exporter) = selector(KeepPolicy::default(), 4);
        for (trace, id) in [(1, 10), (1, 11)] {
            selector.on_end(span(trace, id + 1, id, true, Status::Unset, 1));
        }
        selector.on_end(span(1, 10, 0, true, Status::Unset, 1));
        // Trace 1 took 3 places (10, 11's child 12 and 11); trace 2, ordinary and of 2 spans,
        // finds no room and is dropped whole; trace 3, an error of 1 span, takes the last.
        assert_eq!(exported(&exporter).len(), 3);
        selector.on_end(span(2, 21, 20, true, Status::Unset, 1));
        selector.on_end(span(2, 20, 0, true, Status::Unset, 1));
        assert_eq!(exported(&exporter).len(), 3, "trace 2 dropped whole");
        selector.on_end(span(3, 30, 0, false, Status::error("500"), 1));
        assert_eq!(exported(&exporter).len(), 4, "the error still fits");
    }
}

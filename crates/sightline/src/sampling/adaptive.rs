//! Adaptive head sampling: each route's probability follows its recent traffic so that it
//! sends about `target` traces per second, rises with its error rate and with its p95 latency
//! above the route's own baseline, and falls to the minimum for OK requests while the process
//! is overloaded (the export queue filling, or the CPU saturated).
//!
//! Every route has one-second windows. A request only counts itself into the current window
//! (a few relaxed atomic adds) and compares its trace id with the route's probability; the
//! first request of a new window works out the next probability from the last ten windows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt as _, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult};

/// The windows a route's traffic is averaged over.
const WINDOWS: usize = 10;
/// One window.
const WINDOW: Duration = Duration::from_secs(1);
/// Most routes with a state of their own; the others share one.
const MAX_ROUTES: usize = 1000;
/// The label value of the shared state.
const OTHER_ROUTE: &str = "_OTHER";
/// Log2 latency buckets, from 1 µs to about 36 minutes.
const LATENCY_BUCKETS: usize = 32;

/// The adaptive sampler's settings: `OTEL_TRACES_SAMPLER=parentbased_sightline_adaptive`,
/// `OTEL_TRACES_SAMPLER_ARG` the target.
///
/// ```
/// use sightline::AdaptiveSampling;
///
/// // About 5 sampled traces per second per route, never below 1 in 1000.
/// let adaptive = AdaptiveSampling::new(5.0).min_ratio(0.001);
/// assert_eq!(adaptive.target(), 5.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdaptiveSampling {
    target: f64,
    min_ratio: f64,
    error_weight: f64,
    latency_weight: f64,
    parent_based: bool,
}

impl AdaptiveSampling {
    /// About `target` sampled traces per second per route (a quiet route keeps everything).
    /// The minimum ratio defaults to 0.001; a route at twice its usual p95, or with 10% of
    /// errors, is sampled at twice its traffic's rate.
    pub fn new(target: f64) -> Self {
        Self {
            target: if target.is_finite() && target > 0.0 {
                target
            } else {
                1.0
            },
            min_ratio: 0.001,
            error_weight: 10.0,
            latency_weight: 1.0,
            parent_based: true,
        }
    }

    /// The lowest probability of any route, also the one used while the process is
    /// overloaded.
    #[must_use]
    pub fn min_ratio(mut self, ratio: f64) -> Self {
        self.min_ratio = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            self.min_ratio
        };
        self
    }

    /// How much a route's error rate raises its probability: the factor is
    /// `1 + weight × error_rate` (default 10).
    #[must_use]
    pub fn error_weight(mut self, weight: f64) -> Self {
        self.error_weight = weight.max(0.0);
        self
    }

    /// How much a route's p95 above its baseline raises its probability: the factor is
    /// `1 + weight × max(0, p95 / baseline − 1)` (default 1).
    #[must_use]
    pub fn latency_weight(mut self, weight: f64) -> Self {
        self.latency_weight = weight.max(0.0);
        self
    }

    /// Whether a remote parent's decision is honoured (the default, as
    /// `parentbased_sightline_adaptive`).
    #[must_use]
    pub fn parent_based(mut self, honour: bool) -> Self {
        self.parent_based = honour;
        self
    }

    /// The target, in sampled traces per second per route.
    pub fn target(&self) -> f64 {
        self.target
    }

    pub(crate) fn honours_parent(&self) -> bool {
        self.parent_based
    }
}

/// The probability of a route given its recent windows: the traffic's share
/// (`target / rate`), raised by errors and latency, within `[min, 1]`, or the minimum while
/// overloaded.
pub(crate) fn probability(
    settings: &AdaptiveSampling,
    requests_per_second: f64,
    error_rate: f64,
    p95: Option<f64>,
    baseline: Option<f64>,
    overloaded: bool,
) -> f64 {
    if overloaded {
        return settings.min_ratio;
    }
    let traffic = if requests_per_second <= settings.target {
        1.0
    } else {
        settings.target / requests_per_second
    };
    let slower = match (p95, baseline) {
        (Some(p95), Some(baseline)) if baseline > 0.0 => (p95 / baseline - 1.0).max(0.0),
        _ => 0.0,
    };
    let boost = 1.0 + settings.error_weight * error_rate + settings.latency_weight * slower;
    (traffic * boost).clamp(settings.min_ratio, 1.0)
}

/// The sampler's state: per route, and the process' load.
#[derive(Debug)]
pub(crate) struct Adaptive {
    settings: AdaptiveSampling,
    epoch: Instant,
    routes: RwLock<HashMap<Arc<str>, Arc<RouteState>>>,
    other: Arc<RouteState>,
    load: Load,
}

impl Adaptive {
    pub(crate) fn new(settings: AdaptiveSampling) -> Self {
        Self {
            settings,
            epoch: Instant::now(),
            routes: RwLock::new(HashMap::new()),
            other: Arc::new(RouteState::new(OTHER_ROUTE, None, 0)),
            load: Load::new(),
        }
    }

    /// Watches the export queue's fill (0 to 1) for overload, once the queue exists.
    pub(crate) fn watch_queue(&self, fill: Arc<dyn Fn() -> f64 + Send + Sync>) {
        let _ = self.load.queue_fill.set(QueueFill(fill));
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The route's state, made the first time (up to [`MAX_ROUTES`]).
    fn route(&self, (route, attribute): (&str, Option<&'static str>)) -> Arc<RouteState> {
        if let Some(state) = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
        {
            return Arc::clone(state);
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if routes.len() >= MAX_ROUTES {
            return Arc::clone(&self.other);
        }
        let state = Arc::new(RouteState::new(route, attribute, self.now_ms()));
        routes.insert(Arc::from(route), Arc::clone(&state));
        state
    }

    pub(crate) fn should_sample(
        &self,
        parent_context: Option<&Context>,
        parent_based: bool,
        trace_id: TraceId,
        name: &str,
        attributes: &[KeyValue],
    ) -> SamplingResult {
        let parent = parent_context
            .filter(|cx| cx.has_active_span())
            .map(|cx| cx.span().span_context().clone());
        let trace_state = parent
            .as_ref()
            .map(|p| p.trace_state().clone())
            .unwrap_or_default();
        if parent_based && let Some(parent) = parent.as_ref().filter(|p| p.is_valid()) {
            return SamplingResult {
                decision: if parent.is_sampled() {
                    SamplingDecision::RecordAndSample
                } else {
                    SamplingDecision::Drop
                },
                attributes: Vec::new(),
                trace_state,
            };
        }
        let state = self.route(route_of(name, attributes));
        let now = self.now_ms();
        state.roll(now, self);
        state.seen.fetch_add(1, Ordering::Relaxed);
        let probability = f64::from_bits(state.ratio.load(Ordering::Relaxed));
        // Consistent with TraceIdRatioBased: the low 63 bits of the trace id against the
        // probability, so every service that samples by ratio agrees on a trace.
        let low = u64::from_be_bytes(trace_id.to_bytes()[8..].try_into().unwrap_or([0; 8])) >> 1;
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let picked = probability >= 1.0 || low < (probability * (1u64 << 63) as f64) as u64;
        // A guard for the first window of a burst, before the probability has caught up.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cap = (self.settings.target * 2.0).ceil().max(1.0) as u64;
        let picked = picked && state.sampled.fetch_add(1, Ordering::Relaxed) < cap;
        SamplingResult {
            decision: if picked {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            trace_state,
        }
    }

    /// What a local root's end tells the route: an error, and its duration.
    pub(crate) fn observe(
        &self,
        name: &str,
        attributes: &[KeyValue],
        error: bool,
        duration: Duration,
    ) {
        let state = self.route(route_of(name, attributes));
        state.ended.fetch_add(1, Ordering::Relaxed);
        if error {
            state.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(duration.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let bucket = (63 - micros.leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        state.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Every route's current probability, for tests and the debug page.
    #[cfg(test)]
    fn ratio_of(&self, route: &str) -> Option<f64> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(route)
            .map(|s| f64::from_bits(s.ratio.load(Ordering::Relaxed)))
    }
}

/// The route a span is sampled by (`http.route`, `rpc.method`, else its name), and the
/// attribute it came from.
fn route_of<'a>(name: &'a str, attributes: &'a [KeyValue]) -> (&'a str, Option<&'static str>) {
    attributes
        .iter()
        .find_map(|kv| {
            let attribute = match kv.key.as_str() {
                "http.route" => "http_route",
                "rpc.method" => "rpc_method",
                _ => return None,
            };
            match &kv.value {
                opentelemetry::Value::String(s) => Some((s.as_str(), Some(attribute))),
                _ => None,
            }
        })
        .unwrap_or((name, None))
}

/// One route's windows.
#[derive(Debug)]
struct RouteState {
    /// When the current window started, in ms since the sampler's epoch.
    window_start: AtomicU64,
    seen: AtomicU64,
    sampled: AtomicU64,
    ended: AtomicU64,
    errors: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
    /// The probability, as `f64` bits.
    ratio: AtomicU64,
    history: Mutex<History>,
    gauge: metrics::Gauge,
}

#[derive(Debug, Default)]
struct History {
    /// Requests seen in each of the last windows, newest last.
    seen: std::collections::VecDeque<u64>,
    /// The route's usual p95, in seconds.
    baseline: Option<f64>,
}

impl RouteState {
    /// A route's state; its gauge is labelled `route`, and `http_route` or `rpc_method` as
    /// well when the route is one, so that it joins the RED metrics' series.
    fn new(route: &str, attribute: Option<&'static str>, now: u64) -> Self {
        let gauge = match attribute {
            Some(attribute) => metrics::gauge!(
                super::SAMPLING_RATIO,
                "route" => route.to_owned(),
                attribute => route.to_owned()
            ),
            None => metrics::gauge!(super::SAMPLING_RATIO, "route" => route.to_owned()),
        };
        gauge.set(1.0);
        Self {
            window_start: AtomicU64::new(now),
            seen: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Default::default(),
            ratio: AtomicU64::new(1.0_f64.to_bits()),
            history: Mutex::new(History::default()),
            gauge,
        }
    }

    /// Closes the window when it is over: the first request to see it over does the work.
    fn roll(&self, now: u64, adaptive: &Adaptive) {
        let start = self.window_start.load(Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation)]
        let window = WINDOW.as_millis() as u64;
        if now < start + window
            || self
                .window_start
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let elapsed = ((now - start) as f64 / window as f64).max(1.0);
        let seen = self.seen.swap(0, Ordering::Relaxed);
        self.sampled.store(0, Ordering::Relaxed);
        let ended = self.ended.swap(0, Ordering::Relaxed);
        let errors = self.errors.swap(0, Ordering::Relaxed);
        let latency: Vec<u64> = self
            .latency
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect();
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // Idle windows in between count as empty.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let idle = (elapsed as usize).saturating_sub(1).min(WINDOWS);
        for _ in 0..idle {
            history.seen.push_back(0);
        }
        history.seen.push_back(seen);
        while history.seen.len() > WINDOWS {
            history.seen.pop_front();
        }
        #[allow(clippy::cast_precision_loss)]
        let rate = history.seen.iter().sum::<u64>() as f64 / history.seen.len() as f64;
        #[allow(clippy::cast_precision_loss)]
        let error_rate = if ended == 0 {
            0.0
        } else {
            errors as f64 / ended as f64
        };
        let p95 = p95(&latency);
        let next = probability(
            &adaptive.settings,
            rate,
            error_rate,
            p95,
            history.baseline,
            adaptive.load.overloaded(now),
        );
        if let Some(p95) = p95 {
            history.baseline = Some(match history.baseline {
                // Slow to follow, so a spike stands out against it for a while.
                Some(baseline) => baseline * 0.9 + p95 * 0.1,
                None => p95,
            });
        }
        self.ratio.store(next.to_bits(), Ordering::Relaxed);
        self.gauge.set(next);
    }
}

/// The 95th percentile of log2 buckets of microseconds, as the bucket's upper bound in
/// seconds; `None` without samples.
fn p95(buckets: &[u64]) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = total - total / 20;
    let mut seen = 0;
    for (i, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            #[allow(clippy::cast_precision_loss)]
            return Some((1u64 << (i + 1)) as f64 / 1e6);
        }
    }
    None
}

/// Whether the process is overloaded: the export queue more than three quarters full, or
/// the process' CPU time over the last second near all of the machine's cores.
#[derive(Debug)]
struct Load {
    queue_fill: std::sync::OnceLock<QueueFill>,
    cpu: Mutex<CpuSample>,
    cores: f64,
}

struct QueueFill(Arc<dyn Fn() -> f64 + Send + Sync>);

impl std::fmt::Debug for QueueFill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueFill")
    }
}

#[derive(Debug, Default)]
struct CpuSample {
    at_ms: u64,
    cpu_seconds: Option<f64>,
    overloaded: bool,
}

impl Load {
    fn new() -> Self {
        #[allow(clippy::cast_precision_loss)]
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        Self {
            queue_fill: std::sync::OnceLock::new(),
            cpu: Mutex::new(CpuSample::default()),
            cores,
        }
    }

    fn overloaded(&self, now_ms: u64) -> bool {
        if self.queue_fill.get().is_some_and(|fill| (fill.0)() > 0.75) {
            return true;
        }
        let mut sample = self.cpu.lock().unwrap_or_else(PoisonError::into_inner);
        if now_ms < sample.at_ms + 1000 {
            return sample.overloaded;
        }
        let cpu = process_cpu_seconds();
        if let (Some(before), Some(now)) = (sample.cpu_seconds, cpu) {
            #[allow(clippy::cast_precision_loss)]
            let wall = (now_ms - sample.at_ms) as f64 / 1000.0;
            sample.overloaded = wall > 0.0 && (now - before) / wall >= 0.95 * self.cores;
        }
        sample.at_ms = now_ms;
        sample.cpu_seconds = cpu;
        sample.overloaded
    }
}

/// The process' user and system CPU time, from `/proc/self/stat` (Linux); `None` elsewhere.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux that Rust targets.
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AdaptiveSampling {
        AdaptiveSampling::new(5.0).min_ratio(0.01)
    }

    #[test]
    fn traffic_sets_the_share_a_quiet_route_keeps_everything() {
        let s = settings();
        assert_eq!(probability(&s, 1.0, 0.0, None, None, false), 1.0);
        assert_eq!(probability(&s, 5.0, 0.0, None, None, false), 1.0);
        assert!((probability(&s, 500.0, 0.0, None, None, false) - 0.01).abs() < 1e-12);
        assert!((probability(&s, 100.0, 0.0, None, None, false) - 0.05).abs() < 1e-12);
        // Never below the minimum.
        assert_eq!(probability(&s, 1e9, 0.0, None, None, false), 0.01);
    }

    #[test]
    fn errors_and_latency_raise_overload_lowers() {
        let s = settings();
        let calm = probability(&s, 100.0, 0.0, Some(0.1), Some(0.1), false);
        let failing = probability(&s, 100.0, 0.1, Some(0.1), Some(0.1), false);
        let slow = probability(&s, 100.0, 0.0, Some(0.3), Some(0.1), false);
        assert!((failing / calm - 2.0).abs() < 1e-9, "{failing} vs {calm}");
        assert!((slow / calm - 3.0).abs() < 1e-9, "{slow} vs {calm}");
        assert_eq!(probability(&s, 1.0, 0.5, None, None, true), 0.01);
    }

    #[test]
    fn p95_of_log_buckets() {
        let mut buckets = [0u64; LATENCY_BUCKETS];
        buckets[10] = 95; // about 1-2 ms
        buckets[20] = 5; // about 1-2 s
        assert_eq!(p95(&buckets), Some(2048.0 / 1e6));
        buckets[20] = 6;
        assert_eq!(p95(&buckets), Some(2_097_152.0 / 1e6));
        assert_eq!(p95(&[0; LATENCY_BUCKETS]), None);
    }

    /// Drives one route through windows by hand: `per_window` requests each (a fraction
    /// `errors` failing, all taking about 2 ms), and returns the probability after each.
    fn drive(adaptive: &Adaptive, route: &str, windows: &[(u64, f64)]) -> Vec<f64> {
        let state = adaptive.route((route, Some("http_route")));
        let mut ratios = Vec::new();
        let mut now = 0;
        for &(per_window, errors) in windows {
            state.seen.fetch_add(per_window, Ordering::Relaxed);
            state.ended.fetch_add(per_window, Ordering::Relaxed);
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            state
                .errors
                .fetch_add((errors * per_window as f64) as u64, Ordering::Relaxed);
            state.latency[11].fetch_add(per_window, Ordering::Relaxed);
            now += 1000;
            state.roll(now, adaptive);
            ratios.push(adaptive.ratio_of(route).expect("route"));
        }
        ratios
    }

    #[test]
    fn a_local_roots_end_is_counted_into_its_routes_window() {
        let adaptive = Adaptive::new(settings());
        let attrs = [KeyValue::new("http.route", "/orders/{id}")];
        adaptive.observe("GET", &attrs, true, Duration::from_millis(3));
        let state = adaptive.route(("/orders/{id}", Some("http_route")));
        assert_eq!(state.ended.load(Ordering::Relaxed), 1);
        assert_eq!(state.errors.load(Ordering::Relaxed), 1);
        assert_eq!(state.latency[11].load(Ordering::Relaxed), 1);
        assert_eq!(route_of("GET /x", &[]), ("GET /x", None));
        assert_eq!(
            route_of("GET", &attrs),
            ("/orders/{id}", Some("http_route"))
        );
    }

    #[test]
    fn an_error_burst_raises_the_rate_within_one_window_and_it_settles_after() {
        let adaptive = Adaptive::new(settings());
        let mut windows = vec![(200, 0.0); 10];
        windows.extend([(200, 0.5)]);
        windows.extend(vec![(200, 0.0); 2]);
        let ratios = drive(&adaptive, "/hot", &windows);
        let steady = ratios[9];
        assert!((steady - 0.025).abs() < 1e-9, "{ratios:?}");
        // The window with the burst ends: its probability is 6 times the steady one.
        assert!((ratios[10] - 0.15).abs() < 1e-9, "{ratios:?}");
        assert!((ratios[11] - steady).abs() < 1e-9, "{ratios:?}");
    }

    #[test]
    fn a_quiet_route_never_drops_below_its_minimum_or_loses_anything() {
        let adaptive = Adaptive::new(settings());
        let ratios = drive(&adaptive, "/quiet", &[(1, 0.0); 20]);
        assert!(ratios.iter().all(|&r| r == 1.0), "{ratios:?}");
        let flood = Adaptive::new(settings());
        let ratios = drive(&flood, "/flood", &[(1_000_000, 0.0); 12]);
        assert!(ratios.iter().all(|&r| r >= 0.01), "{ratios:?}");
    }

    #[test]
    fn overload_from_the_queue_sends_ok_traffic_to_the_minimum() {
        let adaptive = Adaptive::new(settings());
        adaptive.watch_queue(Arc::new(|| 0.9));
        let ratios = drive(&adaptive, "/any", &[(1, 0.0); 2]);
        assert_eq!(ratios, vec![0.01, 0.01]);
    }

    #[test]
    fn the_sampler_follows_the_probability_and_the_burst_guard() {
        let adaptive = Adaptive::new(settings());
        let attrs = [KeyValue::new("http.route", "/users/{id}")];
        let picked = (1..=1000u128)
            .filter(|i| {
                let trace =
                    TraceId::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
                adaptive
                    .should_sample(None, true, trace, "GET", &attrs)
                    .decision
                    == SamplingDecision::RecordAndSample
            })
            .count();
        // Probability 1 in the first window, but at most twice the target.
        assert_eq!(picked, 10);
        assert!(process_cpu_seconds().is_some());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Whatever the traffic, errors and latency: within [min, 1], never above 1 for
            /// a route at or under its target, and at the minimum when overloaded.
            #[test]
            fn the_probability_stays_within_its_bounds(
                target in 0.1f64..1000.0,
                min in 0.0f64..0.5,
                rate in 0.0f64..1e7,
                errors in 0.0f64..=1.0,
                p95 in proptest::option::of(1e-6f64..100.0),
                baseline in proptest::option::of(1e-6f64..100.0),
                overloaded: bool,
            ) {
                let s = AdaptiveSampling::new(target).min_ratio(min);
                let p = probability(&s, rate, errors, p95, baseline, overloaded);
                prop_assert!((min..=1.0).contains(&p), "{p}");
                if overloaded {
                    prop_assert_eq!(p, min);
                } else if rate <= target {
                    prop_assert_eq!(p, 1.0);
                }
            }

            /// More errors or a slower p95 never lower the probability; more traffic never
            /// raises it.
            #[test]
            fn the_probability_moves_the_right_way(
                rate in 1.0f64..1e6,
                more_rate in 0.0f64..1e6,
                errors in 0.0f64..0.5,
                more_errors in 0.0f64..0.5,
                p95 in 1e-4f64..10.0,
                slower in 0.0f64..10.0,
            ) {
                let s = AdaptiveSampling::new(5.0).min_ratio(0.001);
                let base = probability(&s, rate, errors, Some(p95), Some(p95), false);
                prop_assert!(probability(&s, rate, errors + more_errors, Some(p95), Some(p95), false) >= base);
                prop_assert!(probability(&s, rate, errors, Some(p95 + slower), Some(p95), false) >= base);
                prop_assert!(probability(&s, rate + more_rate, errors, Some(p95), Some(p95), false) <= base);
            }

            /// A steady route's sampled traces per second converge on the target (or all of
            /// its traffic when quieter), within one window of the windows' average.
            #[test]
            fn a_steady_route_converges_on_its_target(per_second in 1u64..5000) {
                let adaptive = Adaptive::new(AdaptiveSampling::new(5.0).min_ratio(0.0001));
                let ratios = drive(&adaptive, "/steady", &[(per_second, 0.0); 12]);
                let last = *ratios.last().expect("windows");
                #[allow(clippy::cast_precision_loss)]
                let expected = (5.0 / per_second as f64).min(1.0);
                prop_assert!((last - expected).abs() < 1e-9, "{last} vs {expected}");
            }
        }
    }
}

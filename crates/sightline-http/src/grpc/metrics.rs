//! RED metrics of the gRPC middlewares, through the `metrics` facade.
//!
//! As for HTTP, handles are cached per method (and status code), so a call on a known method
//! records without building a `metrics::Key` or touching the recorder's registry. The server
//! and the client differ only in their [`Names`] and labels ([`Labels`]).

use std::sync::{Arc, OnceLock};

use metrics::{Gauge, Histogram, Label, SharedString, Unit};

use crate::exemplars::DurationHistogram;
use opentelemetry_semantic_conventions::{attribute, metric};

use super::code::Code;
use super::method::MethodInfo;
use super::{RPC_STATUS_CODE, legacy};
use crate::core::classify::Side;
use crate::core::intern::{self, HandleCache};

/// `rpc.server.call.duration`: exposed to Prometheus as `rpc_server_call_duration_seconds`.
pub const RPC_SERVER_CALL_DURATION: &str = metric::RPC_SERVER_CALL_DURATION;

/// `rpc.client.call.duration`: exposed to Prometheus as `rpc_client_call_duration_seconds`.
pub const RPC_CLIENT_CALL_DURATION: &str = metric::RPC_CLIENT_CALL_DURATION;

/// `rpc.server.active_calls`: calls in flight on the server, exposed to Prometheus as
/// `rpc_server_active_calls`. (The semantic conventions have no name for it yet.)
pub const RPC_SERVER_ACTIVE_CALLS: &str = "rpc.server.active_calls";

/// `rpc.server.requests_per_rpc`: messages received per call (with
/// [`message_counts`](super::GrpcServerLayerBuilder::message_counts)).
pub const RPC_SERVER_REQUESTS_PER_RPC: &str = legacy::RPC_SERVER_REQUESTS_PER_RPC;

/// `rpc.server.responses_per_rpc`: messages sent per call (with
/// [`message_counts`](super::GrpcServerLayerBuilder::message_counts)).
pub const RPC_SERVER_RESPONSES_PER_RPC: &str = legacy::RPC_SERVER_RESPONSES_PER_RPC;

/// `rpc.client.responses_per_rpc`: messages received per call (with
/// [`message_counts`](super::GrpcClientLayerBuilder::message_counts)).
pub const RPC_CLIENT_RESPONSES_PER_RPC: &str = legacy::RPC_CLIENT_RESPONSES_PER_RPC;

/// Describes the gRPC metrics (unit and help text) to the installed recorder.
///
/// Call once after installing a recorder; the Prometheus exporter uses the unit to name the
/// histograms `rpc_server_call_duration_seconds` and `rpc_client_call_duration_seconds`.
pub fn describe_grpc_metrics() {
    metrics::describe_histogram!(
        RPC_SERVER_CALL_DURATION,
        Unit::Seconds,
        "Duration of gRPC server calls, from the request head to the end of the response stream."
    );
    metrics::describe_histogram!(
        RPC_CLIENT_CALL_DURATION,
        Unit::Seconds,
        "Duration of gRPC client calls, from the request to the end of the response stream."
    );
    metrics::describe_gauge!(
        RPC_SERVER_ACTIVE_CALLS,
        Unit::Count,
        "Number of gRPC server calls in flight."
    );
    metrics::describe_histogram!(
        RPC_SERVER_REQUESTS_PER_RPC,
        Unit::Count,
        "Messages received per gRPC server call."
    );
    metrics::describe_histogram!(
        RPC_SERVER_RESPONSES_PER_RPC,
        Unit::Count,
        "Messages sent per gRPC server call."
    );
    metrics::describe_histogram!(
        RPC_CLIENT_RESPONSES_PER_RPC,
        Unit::Count,
        "Messages received per gRPC client call."
    );
}

/// The cached handles of one method.
#[derive(Default)]
pub(crate) struct MethodMetrics {
    durations: HandleCache<DurationHistogram>,
    active: OnceLock<Gauge>,
    messages: OnceLock<[Option<Histogram>; 2]>,
}

const CODE_NUMBERS: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// The metric names of one side.
pub(crate) struct Names {
    pub(crate) duration: &'static str,
    /// Messages received by a server; `None` on a client, which sees what it receives only
    /// (what it sends goes through a channel whose request body this layer cannot wrap).
    pub(crate) requests: Option<&'static str>,
    pub(crate) responses: &'static str,
}

impl Names {
    pub(crate) fn of(side: Side) -> Self {
        match side {
            Side::Server => Self {
                duration: RPC_SERVER_CALL_DURATION,
                requests: Some(RPC_SERVER_REQUESTS_PER_RPC),
                responses: RPC_SERVER_RESPONSES_PER_RPC,
            },
            Side::Client => Self {
                duration: RPC_CLIENT_CALL_DURATION,
                requests: None,
                responses: RPC_CLIENT_RESPONSES_PER_RPC,
            },
        }
    }
}

/// What a layer's labels look like.
pub(crate) struct Labels {
    pub(crate) names: Names,
    pub(crate) legacy: bool,
    /// The client's `server.address` and `server.port`.
    pub(crate) target: Option<(Arc<str>, u16)>,
}

impl Labels {
    fn method_labels(&self, info: &MethodInfo) -> Vec<Label> {
        let mut labels = Vec::with_capacity(6);
        if self.legacy {
            labels.push(Label::from_static_parts(legacy::RPC_SYSTEM, "grpc"));
            labels.push(Label::from_static_parts(legacy::RPC_SERVICE, info.service));
            labels.push(Label::from_static_parts(
                attribute::RPC_METHOD,
                info.short_method,
            ));
        } else {
            labels.push(Label::from_static_parts(attribute::RPC_SYSTEM_NAME, "grpc"));
            labels.push(Label::from_static_parts(
                attribute::RPC_METHOD,
                info.rpc_method,
            ));
        }
        if let Some((host, port)) = &self.target {
            labels.push(Label::new(
                attribute::SERVER_ADDRESS,
                SharedString::from(Arc::clone(host)),
            ));
            labels.push(Label::new(
                attribute::SERVER_PORT,
                SharedString::from_owned(itoa::Buffer::new().format(*port).to_owned()),
            ));
        }
        labels
    }

    fn duration_labels(&self, info: &MethodInfo, code: Code, error: bool) -> Vec<Label> {
        let mut labels = self.method_labels(info);
        if self.legacy {
            labels.push(Label::from_static_parts(
                legacy::RPC_GRPC_STATUS_CODE,
                CODE_NUMBERS[code as usize],
            ));
        } else {
            labels.push(Label::from_static_parts(RPC_STATUS_CODE, code.as_str()));
        }
        if error {
            labels.push(Label::from_static_parts(
                attribute::ERROR_TYPE,
                code.as_str(),
            ));
        }
        labels
    }

    /// The in-flight gauge of a method (servers).
    pub(crate) fn active<'a>(&self, info: &'a MethodInfo) -> &'a Gauge {
        info.metrics
            .active
            .get_or_init(|| intern::gauge(RPC_SERVER_ACTIVE_CALLS, self.method_labels(info)))
    }

    /// Records a finished call; `messages` are the (request, response) message counts, and a
    /// sampled `span` is the duration's exemplar.
    pub(crate) fn record(
        &self,
        info: &MethodInfo,
        code: Code,
        error: bool,
        secs: f64,
        messages: Option<(u64, u64)>,
        span: Option<&opentelemetry::trace::SpanContext>,
    ) {
        let register = || {
            DurationHistogram::register(
                self.names.duration,
                self.duration_labels(info, code, error),
            )
        };
        match info
            .metrics
            .durations
            .get_or_insert_with(code as u32 + 1, register)
        {
            Some(histogram) => histogram.record(secs, span),
            None => register().record(secs, span),
        }
        if let Some((request_messages, response_messages)) = messages {
            let [requests, responses] = info.metrics.messages.get_or_init(|| {
                let labels = self.method_labels(info);
                [
                    self.names
                        .requests
                        .map(|name| intern::histogram(name, labels.clone())),
                    Some(intern::histogram(self.names.responses, labels)),
                ]
            });
            if let Some(requests) = requests {
                requests.record(request_messages as f64);
            }
            if let Some(responses) = responses {
                responses.record(response_messages as f64);
            }
        }
    }
}

//! RED metrics of the gRPC middleware, through the `metrics` facade.
//!
//! As for HTTP, handles are cached per method (and status code), so a call on a known method
//! records without building a `metrics::Key` or touching the recorder's registry.

use std::sync::{Arc, OnceLock};

use metrics::{Gauge, Histogram, Label, SharedString, Unit};

use super::code::Code;
use super::method::MethodInfo;
use crate::server::metrics::HandleCache;

/// `rpc.server.call.duration`: exposed to Prometheus as `rpc_server_call_duration_seconds`.
pub const RPC_SERVER_CALL_DURATION: &str = "rpc.server.call.duration";

/// `rpc.client.call.duration`: exposed to Prometheus as `rpc_client_call_duration_seconds`.
pub const RPC_CLIENT_CALL_DURATION: &str = "rpc.client.call.duration";

/// `rpc.server.active_calls`: calls in flight on the server, exposed to Prometheus as
/// `rpc_server_active_calls`.
pub const RPC_SERVER_ACTIVE_CALLS: &str = "rpc.server.active_calls";

/// `rpc.server.requests_per_rpc`: messages received per call (with
/// [`message_counts`](super::GrpcServerLayerBuilder::message_counts)).
pub const RPC_SERVER_REQUESTS_PER_RPC: &str = "rpc.server.requests_per_rpc";

/// `rpc.server.responses_per_rpc`: messages sent per call (with
/// [`message_counts`](super::GrpcServerLayerBuilder::message_counts)).
pub const RPC_SERVER_RESPONSES_PER_RPC: &str = "rpc.server.responses_per_rpc";

/// `rpc.client.responses_per_rpc`: messages received per call (with
/// [`message_counts`](super::GrpcClientLayerBuilder::message_counts)).
pub const RPC_CLIENT_RESPONSES_PER_RPC: &str = "rpc.client.responses_per_rpc";

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
    durations: HandleCache<Histogram>,
    active: OnceLock<Gauge>,
    messages: OnceLock<[Histogram; 2]>,
}

const CODE_NUMBERS: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// What a layer's labels look like.
pub(crate) struct LabelStyle {
    pub(crate) legacy: bool,
    pub(crate) server: bool,
    /// The client's `server.address` and `server.port`.
    pub(crate) target: Option<(Arc<str>, u16)>,
}

impl LabelStyle {
    fn method_labels(&self, info: &MethodInfo) -> Vec<Label> {
        let mut labels = Vec::with_capacity(6);
        if self.legacy {
            labels.push(Label::from_static_parts("rpc.system", "grpc"));
            labels.push(Label::from_static_parts("rpc.service", info.service));
            labels.push(Label::from_static_parts("rpc.method", info.short_method));
        } else {
            labels.push(Label::from_static_parts("rpc.system.name", "grpc"));
            labels.push(Label::from_static_parts("rpc.method", info.rpc_method));
        }
        if let Some((host, port)) = &self.target {
            labels.push(Label::new(
                "server.address",
                SharedString::from(Arc::clone(host)),
            ));
            labels.push(Label::new(
                "server.port",
                SharedString::from_owned(port.to_string()),
            ));
        }
        labels
    }

    fn duration_labels(&self, info: &MethodInfo, code: Code, error: bool) -> Vec<Label> {
        let mut labels = self.method_labels(info);
        if self.legacy {
            labels.push(Label::from_static_parts(
                "rpc.grpc.status_code",
                CODE_NUMBERS[code as usize],
            ));
        } else {
            labels.push(Label::from_static_parts(
                "rpc.response.status_code",
                code.as_str(),
            ));
        }
        if error {
            labels.push(Label::from_static_parts("error.type", code.as_str()));
        }
        labels
    }

    /// The in-flight gauge of a method (server only).
    pub(crate) fn active<'a>(&self, info: &'a MethodInfo) -> &'a Gauge {
        info.metrics
            .active
            .get_or_init(|| metrics::gauge!(RPC_SERVER_ACTIVE_CALLS, self.method_labels(info)))
    }

    /// Records a finished call.
    pub(crate) fn record(
        &self,
        info: &MethodInfo,
        code: Code,
        error: bool,
        secs: f64,
        messages: Option<(u64, u64)>,
    ) {
        let name = if self.server {
            RPC_SERVER_CALL_DURATION
        } else {
            RPC_CLIENT_CALL_DURATION
        };
        let register = || metrics::histogram!(name, self.duration_labels(info, code, error));
        match info
            .metrics
            .durations
            .get_or_insert_with(code as u32 + 1, register)
        {
            Some(histogram) => histogram.record(secs),
            None => register().record(secs),
        }
        if let Some((request_messages, response_messages)) = messages {
            let [requests, responses] = info.metrics.messages.get_or_init(|| {
                let labels = self.method_labels(info);
                if self.server {
                    [
                        metrics::histogram!(RPC_SERVER_REQUESTS_PER_RPC, labels.clone()),
                        metrics::histogram!(RPC_SERVER_RESPONSES_PER_RPC, labels),
                    ]
                } else {
                    // A client sees the messages it receives; what it sends goes through a
                    // channel whose request body type this layer cannot wrap.
                    [
                        Histogram::noop(),
                        metrics::histogram!(RPC_CLIENT_RESPONSES_PER_RPC, labels),
                    ]
                }
            });
            requests.record(request_messages as f64);
            responses.record(response_messages as f64);
        }
    }
}

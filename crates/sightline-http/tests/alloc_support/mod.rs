//! The counting loop the allocation tests share (`server_alloc`, `grpc_alloc`): each binary
//! has its own counting global allocator and passes it in.

use std::alloc::System;
use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use stats_alloc::{Region, StatsAlloc};
use tower::{Service, ServiceExt as _};

/// Calls counted after the warm-up.
pub(crate) const CALLS: usize = 1000;
/// Calls made first, not counted: caches, interned names and handles fill up.
const WARM_UP: usize = 32;

/// Average allocations (and reallocations) per call through `svc`, after a warm-up. Each
/// request is made by `request` outside the counted region; `check` sees each collected
/// response body.
pub(crate) fn per_call<S, B>(
    allocator: &'static StatsAlloc<System>,
    runtime: &tokio::runtime::Runtime,
    mut svc: S,
    request: impl Fn() -> Request<Full<Bytes>>,
    check: impl Fn(&http_body_util::Collected<B::Data>),
) -> f64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let mut one = |counted: bool| {
        let req = request();
        let region = Region::new(allocator);
        runtime.block_on(async {
            let response = svc
                .ready()
                .await
                .expect("ready")
                .call(req)
                .await
                .expect("infallible");
            let collected = response.into_body().collect().await.expect("body");
            check(&collected);
        });
        let change = region.change();
        if counted {
            change.allocations + change.reallocations
        } else {
            0
        }
    };
    for _ in 0..WARM_UP {
        one(false);
    }
    let total: usize = (0..CALLS).map(|_| one(true)).sum();
    total as f64 / CALLS as f64
}

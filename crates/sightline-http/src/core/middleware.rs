//! The shape every middleware has, written once: a layer holding the shared configuration, a
//! service wrapping the inner one (`get_ref`, `get_mut`, `into_inner`), and a `Service` impl
//! that passes readiness through, starts the call (the module's `start`), calls the inner
//! service in the call's scope and returns the module's `ResponseFuture`.
//!
//! Invoked in the protocol's `mod.rs`, so that its `layer.rs` and `service.rs` reach the
//! private fields. The module provides `Shared` (with a `common: Common` field), `$builder: Default`,
//! `ResponseFuture`/`ResponseBody` (from `response_types!`) and an inherent
//! `fn start<B>(&self, req: Request<B>) -> (Request<$inner_body>, Tracked<Call>)` on the
//! service.

macro_rules! middleware {
    (
        $(#[$layer_doc:meta])*
        layer: $layer:ident = $path:literal,
        builder: $builder:ident,
        $(#[$service_doc:meta])*
        service: $service:ident { $($extra:ident: $extra_ty:ty = $extra_init:expr),* $(,)? },
        shared: $shared:ty, call: $call:ty, inner_body: $inner_body:ty, error: [$($bound:tt)*],
        $(#[$future_doc:meta])*
        future;
        $(#[$body_doc:meta])*
        body;
    ) => {
        $crate::core::lifecycle::response_types! {
            call: $call,
            error: [$($bound)*],
            #[doc = concat!("Response future of [`", stringify!($service), "`].")]
            ///
            /// Polls the inner service's future in the call's scope (its `tracing` span and
            /// OpenTelemetry context, where the middleware has them), shows the response head
            /// to the middleware and hands the call to the [`ResponseBody`]. An error of the
            /// inner service ends the call as failed; dropping the future before the response
            /// ends it as cancelled.
            $(#[$future_doc])*
            future;
            #[doc = concat!("Response body of [`", stringify!($service), "`]: where a call ends.")]
            ///
            /// The middleware sees each data frame and the trailers, and ends the call
            /// (duration, span, access log where it writes one) once: at the end of the
            /// stream, on a body error, or when the body is dropped before its end.
            $(#[$body_doc])*
            body;
        }

        $(#[$layer_doc])*
        #[derive(Clone)]
        pub struct $layer {
            shared: ::std::sync::Arc<$shared>,
        }

        impl $layer {
            /// A builder with every part switched on except OpenTelemetry spans, which need a
            /// tracer.
            ///
            /// ```
            #[doc = concat!("let layer = ", $path, "::builder().build();")]
            /// # drop(layer);
            /// ```
            pub fn builder() -> $builder {
                <$builder as Default>::default()
            }

            fn from_shared(shared: $shared) -> Self {
                Self {
                    shared: ::std::sync::Arc::new(shared),
                }
            }
        }

        impl ::std::fmt::Debug for $layer {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut d = f.debug_struct(stringify!($layer));
                self.shared.common.debug_fields(&mut d);
                d.finish_non_exhaustive()
            }
        }

        impl<S> ::tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    shared: ::std::sync::Arc::clone(&self.shared),
                    $($extra: $extra_init,)*
                }
            }
        }

        $(#[$service_doc])*
        pub struct $service<S> {
            inner: S,
            shared: ::std::sync::Arc<$shared>,
            $($extra: $extra_ty,)*
        }

        impl<S> $service<S> {
            /// The inner service.
            pub fn get_ref(&self) -> &S {
                &self.inner
            }

            /// The inner service, mutably.
            pub fn get_mut(&mut self) -> &mut S {
                &mut self.inner
            }

            /// The inner service, without this middleware.
            pub fn into_inner(self) -> S {
                self.inner
            }
        }

        impl<S: Clone> Clone for $service<S> {
            fn clone(&self) -> Self {
                Self {
                    inner: self.inner.clone(),
                    shared: ::std::sync::Arc::clone(&self.shared),
                    $($extra: self.$extra.clone(),)*
                }
            }
        }

        impl<S: ::std::fmt::Debug> ::std::fmt::Debug for $service<S> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($service))
                    .field("inner", &self.inner)
                    .finish_non_exhaustive()
            }
        }

        impl<S, ReqBody, ResBody> ::tower_service::Service<::http::Request<ReqBody>> for $service<S>
        where
            S: ::tower_service::Service<::http::Request<$inner_body>, Response = ::http::Response<ResBody>>,
            S::Error: $($bound)*,
            ResBody: ::http_body::Body,
        {
            type Response = ::http::Response<ResponseBody<ResBody>>;
            type Error = S::Error;
            type Future = ResponseFuture<S::Future>;

            fn poll_ready(
                &mut self,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, req: ::http::Request<ReqBody>) -> Self::Future {
                let (req, call) = self.start(req);
                let inner = {
                    let _scope = call.enter();
                    self.inner.call(req)
                };
                ResponseFuture::new(inner, call)
            }
        }
    };
}

pub(crate) use middleware;

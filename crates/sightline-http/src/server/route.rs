//! Per-route caches: the route template, span names and metric handles, so that a request on
//! a known route allocates no name and looks up no metric.
//!
//! axum applies `Router::layer` to each route (and each method of a route) separately, so
//! every wrapped service sees one route template for its whole life. The first request fixes
//! the template in the service's [`RouteSlot`]; a request that carries another template (a
//! layer applied outside the router, nesting) takes the uncached path, which is correct but
//! allocates.

use std::sync::{Arc, OnceLock};

use crate::semconv::METHODS;

/// Label value of `http.route` for requests that matched no route: one fixed value, so a scan
/// of random paths adds no series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What a wrapped service knows about its route, filled in by the first request.
#[derive(Default)]
pub(crate) struct RouteSlot {
    info: OnceLock<RouteInfo>,
}

impl RouteSlot {
    /// The cached route info if `template` is this slot's route (or the slot was empty).
    pub(crate) fn resolve(&self, template: &str) -> Option<&RouteInfo> {
        let info = self
            .info
            .get_or_init(|| RouteInfo::new(Some(Arc::from(template))));
        (info.template() == template).then_some(info)
    }

    /// The cached route info, once a request has filled it in.
    pub(crate) fn get(&self) -> Option<&RouteInfo> {
        self.info.get()
    }
}

/// A route template and what is derived from it.
pub(crate) struct RouteInfo {
    /// `None` for unmatched requests.
    template: Option<Arc<str>>,
    /// `"{method} {route}"`, made once per method and kept for the life of the process.
    span_names: [OnceLock<&'static str>; METHODS.len()],
    #[cfg(feature = "metrics")]
    pub(crate) histograms: crate::server::metrics::HandleCache<::metrics::Histogram>,
}

impl RouteInfo {
    pub(crate) fn new(template: Option<Arc<str>>) -> Self {
        Self {
            template,
            span_names: Default::default(),
            #[cfg(feature = "metrics")]
            histograms: Default::default(),
        }
    }

    /// The template, or [`UNMATCHED_ROUTE`].
    pub(crate) fn template(&self) -> &str {
        self.template.as_deref().unwrap_or(UNMATCHED_ROUTE)
    }

    /// The template as an `http.route` value; `None` when unmatched (the attribute is then
    /// left out, as the semantic conventions ask).
    pub(crate) fn http_route(&self) -> Option<&Arc<str>> {
        self.template.as_ref()
    }

    /// The span name for `method`: `"{method} {route}"`, or the method alone when unmatched.
    pub(crate) fn span_name(&self, method: usize) -> &'static str {
        let method_name = METHODS[method];
        match &self.template {
            None => method_name,
            // Leaked once per (route, method) pair: both sets are fixed by the application's
            // router, so the total is bounded, and a `&'static str` name costs nothing per span.
            Some(route) => self.span_names[method].get_or_init(|| {
                let name = [method_name, " ", route].concat();
                Box::leak(name.into_boxed_str())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keeps_first_route_and_rejects_others() {
        let slot = RouteSlot::default();
        let info = slot.resolve("/users/{id}").expect("first route is cached");
        assert_eq!(info.span_name(0), "GET /users/{id}");
        assert!(std::ptr::eq(info.span_name(0), info.span_name(0)));
        assert!(slot.resolve("/other").is_none());
        assert!(slot.resolve("/users/{id}").is_some());
    }

    #[test]
    fn unmatched_uses_method_alone() {
        let info = RouteInfo::new(None);
        assert_eq!(info.span_name(2), "POST");
        assert_eq!(info.template(), UNMATCHED_ROUTE);
        assert!(info.http_route().is_none());
    }
}

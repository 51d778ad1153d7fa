//! Per-route caches: the route template, span names and metric handles, so that a request on
//! a known route allocates no name and looks up no metric.
//!
//! axum applies `Router::layer` to each route (and each method of a route) separately, so
//! every wrapped service sees one route template for its whole life. The first request fixes
//! the template in the service's [`RouteSlot`], taking the route's [`RouteInfo`] from the
//! layer's [`RouteTable`]; later requests read the slot without a lock. A request that carries
//! another template (a layer applied outside the router, nesting) takes the uncached path,
//! which is correct but allocates.
//!
//! axum may also apply the layer per request (a `Router` called as a service without
//! `with_state`/`into_make_service`); then each request makes a new slot, which costs one
//! look-up in the table, and still shares the route's names and metric handles.

// Route templates come from axum's `MatchedPath`; without the `axum` feature every request is
// unmatched and the table stays unused.
#![cfg_attr(not(feature = "axum"), allow(dead_code))]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::core::intern;
use crate::core::semconv::METHODS;

/// Label value of `http.route` for requests that matched no route: one fixed value, so a scan
/// of random paths adds no series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Most distinct route templates a layer interns; past it, routes are served uncached.
const MAX_ROUTES: usize = 4096;

/// The layer's routes, shared by every service it wraps: one [`RouteInfo`] per template.
#[derive(Default)]
pub(crate) struct RouteTable {
    routes: Mutex<HashMap<Arc<str>, Arc<RouteInfo>>>,
}

impl RouteTable {
    fn intern(&self, template: &str) -> Arc<RouteInfo> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(info) = routes.get(template) {
            return Arc::clone(info);
        }
        let template: Arc<str> = Arc::from(template);
        // Span names are interned only for the table's routes, so their number stays bounded.
        let interned = routes.len() < MAX_ROUTES;
        let info = Arc::new(RouteInfo::new(Some(Arc::clone(&template)), interned));
        if interned {
            routes.insert(template, Arc::clone(&info));
        }
        info
    }
}

/// What a wrapped service knows about its route, filled in by the first request.
#[derive(Default)]
pub(crate) struct RouteSlot {
    info: OnceLock<Arc<RouteInfo>>,
}

impl RouteSlot {
    /// The cached route info if `template` is this slot's route (or the slot was empty).
    pub(crate) fn resolve(&self, template: &str, table: &RouteTable) -> Option<&RouteInfo> {
        let info = self.info.get_or_init(|| table.intern(template));
        (info.template() == template).then_some(&**info)
    }

    /// The cached route info, once a request has filled it in.
    pub(crate) fn get(&self) -> Option<&RouteInfo> {
        self.info.get().map(|info| &**info)
    }
}

/// A route template and what is derived from it.
pub(crate) struct RouteInfo {
    /// `None` for unmatched requests.
    template: Option<Arc<str>>,
    /// Whether the route is one of the layer's probe routes, decided by the first request.
    pub(crate) probe: OnceLock<bool>,
    /// `"{method} {route}"`, interned once per process (`None` past the interner's cap).
    span_names: [OnceLock<Option<&'static str>>; METHODS.len()],
    /// Whether span names may be interned (the route is in the table, so the set is bounded).
    intern_names: bool,
    #[cfg(feature = "metrics")]
    pub(crate) histograms: intern::HandleCache<crate::exemplars::DurationHistogram>,
}

impl RouteInfo {
    pub(crate) fn new(template: Option<Arc<str>>, intern_names: bool) -> Self {
        Self {
            template,
            span_names: Default::default(),
            probe: OnceLock::new(),
            intern_names,
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
    pub(crate) fn span_name(&self, method: usize) -> Cow<'static, str> {
        let method_name = METHODS[method];
        match &self.template {
            None => Cow::Borrowed(method_name),
            // Interned once per process per (route, method) pair of a table's route: both
            // sets are fixed by the application's router, so the total is bounded, and a
            // `&'static str` name costs nothing per span.
            Some(route) if self.intern_names => match *self.span_names[method]
                .get_or_init(|| intern::joined(&[method_name, " ", route]))
            {
                Some(name) => Cow::Borrowed(name),
                None => Cow::Owned([method_name, " ", route].concat()),
            },
            Some(route) => Cow::Owned([method_name, " ", route].concat()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keeps_first_route_and_rejects_others() {
        let _lock = crate::core::intern::test_lock();
        let table = RouteTable::default();
        let slot = RouteSlot::default();
        let info = slot
            .resolve("/users/{id}", &table)
            .expect("first route is cached");
        assert_eq!(info.span_name(0), "GET /users/{id}");
        let (Cow::Borrowed(a), Cow::Borrowed(b)) = (info.span_name(0), info.span_name(0)) else {
            panic!("interned routes have static names");
        };
        assert!(std::ptr::eq(a, b));
        assert!(slot.resolve("/other", &table).is_none());
        assert!(slot.resolve("/users/{id}", &table).is_some());
    }

    #[test]
    fn slots_of_one_route_share_its_info() {
        let _lock = crate::core::intern::test_lock();
        let table = RouteTable::default();
        let (a, b) = (RouteSlot::default(), RouteSlot::default());
        let a = a.resolve("/r", &table).expect("cached");
        let b = b.resolve("/r", &table).expect("cached");
        assert!(
            std::ptr::eq(a, b),
            "a per-request layer reuses the route's handles"
        );
    }

    #[test]
    fn unmatched_uses_method_alone() {
        let info = RouteInfo::new(None, false);
        assert_eq!(info.span_name(2), "POST");
        assert_eq!(info.template(), UNMATCHED_ROUTE);
        assert!(info.http_route().is_none());
    }
}

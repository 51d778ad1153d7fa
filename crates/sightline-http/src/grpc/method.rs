//! The methods a layer has seen: their `rpc.method` names (interned once per process, however
//! many layers see them) and metric handles (cached per layer, registered once per process),
//! so that a call on a known method allocates no name and looks up no metric.
//!
//! A server cannot tell from a request whether it implements the method: tonic answers an
//! unknown one with `UNIMPLEMENTED` and no message. So a method seen for the first time is
//! held as *pending* and interned once a handler answered it: a response head without a status
//! (a handler streams its answer), or a trailers-only status other than `UNIMPLEMENTED`,
//! `UNAVAILABLE` or `RESOURCE_EXHAUSTED`. A call dropped before its head, timed out or failed by
//! an inner layer proves nothing and is `_OTHER`. A scan of random method names therefore adds
//! no name, no series and no memory, even when the scanner cancels its calls. The user's list
//! ([`GrpcServerLayerBuilder::known_services`](super::GrpcServerLayerBuilder::known_services))
//! narrows this: methods of services not on it are `_OTHER` from the start, and methods listed
//! one by one are recognised at once.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::core::intern;

/// Most distinct methods a layer interns; past it, new methods are recorded as `_OTHER`.
const MAX_METHODS: usize = 1024;

/// `rpc.method` of a method the instrumentation does not recognise.
pub const OTHER_METHOD: &str = "_OTHER";

/// The path prefix of the standard health service.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// A recognised method and what is derived from it.
pub(crate) struct MethodInfo {
    /// `pkg.Service/Method`, or `_OTHER`.
    pub(crate) rpc_method: &'static str,
    /// `pkg.Service` (the pre-1.38 `rpc.service`), or `_OTHER`.
    pub(crate) service: &'static str,
    /// `Method` (the pre-1.38 `rpc.method`), or `_OTHER`.
    pub(crate) short_method: &'static str,
    #[cfg(feature = "metrics")]
    pub(crate) metrics: super::metrics::MethodMetrics,
}

impl MethodInfo {
    fn new(rpc_method: &'static str) -> Self {
        let (service, short_method) = rpc_method
            .split_once('/')
            .unwrap_or((OTHER_METHOD, OTHER_METHOD));
        Self {
            rpc_method,
            service,
            short_method,
            #[cfg(feature = "metrics")]
            metrics: Default::default(),
        }
    }

    pub(crate) fn is_other(&self) -> bool {
        std::ptr::eq(self.rpc_method, OTHER_METHOD)
    }
}

/// What a call's path resolved to when it started.
pub(crate) enum Resolved {
    /// A recognised method.
    Known(Arc<MethodInfo>),
    /// A well-formed path seen for the first time; decided when the call ends.
    Pending(Box<str>),
    /// Not a method this layer recognises; the original `pkg.Service/Method`.
    Other(Box<str>),
}

impl Resolved {
    /// The `pkg.Service/Method` the caller asked for.
    pub(crate) fn requested(&self) -> &str {
        match self {
            Self::Known(info) => info.rpc_method,
            Self::Pending(path) | Self::Other(path) => path,
        }
    }
}

/// The methods of one layer.
pub(crate) struct MethodTable {
    methods: RwLock<HashMap<Box<str>, Arc<MethodInfo>>>,
    other: Arc<MethodInfo>,
    /// Services (`pkg.Service`) or methods (`pkg.Service/Method`) the user says are served.
    known: Option<Vec<Box<str>>>,
}

impl MethodTable {
    pub(crate) fn new(known: Option<Vec<Box<str>>>) -> Self {
        Self {
            methods: RwLock::default(),
            other: Arc::new(MethodInfo::new(OTHER_METHOD)),
            known,
        }
    }

    /// The `_OTHER` method.
    pub(crate) fn other(&self) -> &Arc<MethodInfo> {
        &self.other
    }

    /// Resolves a request path (`/pkg.Service/Method`). `trust` interns a new well-formed
    /// method at once (a client knows the methods it calls).
    pub(crate) fn resolve(&self, path: &str, trust: bool) -> Resolved {
        let Some(name) = method_name(path) else {
            return Resolved::Other(path.trim_start_matches('/').into());
        };
        if let Some(info) = self
            .methods
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
        {
            return Resolved::Known(Arc::clone(info));
        }
        match &self.known {
            Some(known) if known.iter().any(|k| &**k == name) => self.intern(name),
            // A listed service may still lack the method: learn it from its first answer.
            Some(known) if !is_service_listed(known, name) => Resolved::Other(name.into()),
            _ if trust => self.intern(name),
            _ => Resolved::Pending(name.into()),
        }
    }

    /// Settles a pending method when its call ends: interned when a handler `served` it,
    /// else `_OTHER` for this call and still pending for the next.
    pub(crate) fn settle(&self, name: &str, served: bool) -> Resolved {
        if served {
            self.intern(name)
        } else {
            Resolved::Other(name.into())
        }
    }

    fn intern(&self, name: &str) -> Resolved {
        let mut methods = self.methods.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(info) = methods.get(name) {
            return Resolved::Known(Arc::clone(info));
        }
        if methods.len() >= MAX_METHODS {
            return Resolved::Other(name.into());
        }
        // Interned once per process, however many layers see the method: the set is fixed by
        // the application's services and capped, and a `&'static str` name costs nothing per
        // span or label.
        let Some(interned) = intern::name(name) else {
            return Resolved::Other(name.into());
        };
        let info = Arc::new(MethodInfo::new(interned));
        methods.insert(name.into(), Arc::clone(&info));
        Resolved::Known(info)
    }
}

/// `pkg.Service/Method` from `/pkg.Service/Method`; `None` unless the path has exactly two
/// non-empty segments.
fn method_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix('/')?;
    let (service, method) = name.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then_some(name)
}

fn is_service_listed(known: &[Box<str>], name: &str) -> bool {
    known.iter().any(|k| {
        name.strip_prefix(&**k)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Whether a path is a call to the standard health service.
pub(crate) fn is_health_check(path: &str) -> bool {
    path.starts_with(HEALTH_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(method_name("/a.B/C"), Some("a.B/C"));
        for bad in ["", "/", "/a.B", "/a.B/", "//C", "/a/b/c", "a.B/C"] {
            assert_eq!(method_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn pending_methods_are_interned_unless_unimplemented() {
        let _lock = crate::core::intern::test_lock();
        let table = MethodTable::new(None);
        let Resolved::Pending(name) = table.resolve("/a.B/C", false) else {
            panic!("first sight is pending");
        };
        assert!(matches!(table.settle(&name, false), Resolved::Other(_)));
        assert!(matches!(
            table.resolve("/a.B/C", false),
            Resolved::Pending(_)
        ));
        let Resolved::Known(info) = table.settle(&name, true) else {
            panic!("interned");
        };
        assert_eq!((info.service, info.short_method), ("a.B", "C"));
        let Resolved::Known(again) = table.resolve("/a.B/C", false) else {
            panic!("known now");
        };
        assert!(Arc::ptr_eq(&info, &again));
    }

    #[test]
    fn listed_services() {
        let _lock = crate::core::intern::test_lock();
        let table = MethodTable::new(Some(vec!["a.B".into(), "x.Y/Z".into()]));
        // A listed service's method is learned from its first answer.
        let Resolved::Pending(name) = table.resolve("/a.B/C", false) else {
            panic!("pending");
        };
        assert!(matches!(table.settle(&name, false), Resolved::Other(_)));
        assert!(matches!(table.settle(&name, true), Resolved::Known(_)));
        assert!(matches!(table.resolve("/a.B/C", false), Resolved::Known(_)));
        assert!(matches!(table.resolve("/x.Y/Z", false), Resolved::Known(_)));
        assert!(matches!(table.resolve("/x.Y/W", false), Resolved::Other(_)));
        assert!(matches!(
            table.resolve("/a.BC/D", false),
            Resolved::Other(_)
        ));
        assert!(matches!(table.resolve("/nope", false), Resolved::Other(_)));
    }

    #[test]
    fn table_is_bounded() {
        let _lock = crate::core::intern::test_lock();
        let table = MethodTable::new(None);
        for i in 0..MAX_METHODS + 10 {
            let _ = table.resolve(&format!("/s.S/M{i}"), true);
        }
        assert!(matches!(
            table.resolve("/s.S/New", true),
            Resolved::Other(_)
        ));
        assert!(table.other().is_other());
    }
}

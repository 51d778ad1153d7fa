//! Names and metric handles, made once per process rather than once per layer.
//!
//! - [`name`] interns a name (a span name, an `rpc.method`) as a `&'static str`: leaked once
//!   per process, so a layer made per connection leaks nothing more, and a span or a label
//!   costs nothing per call. The set is capped ([`MAX_NAMES`]).
//! - [`histogram`] and [`gauge`] register a metric handle once per process and recorder, and
//!   hand out clones after that: a new layer registers nothing the process already has.
//! - [`HandleCache`] is the lock-free per-layer table in front of them, so a call on a known
//!   route or method finds its handle without a lock and without building a `metrics::Key`.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
#[cfg(feature = "metrics")]
use std::sync::{
    OnceLock,
    atomic::{AtomicU32, Ordering},
};

/// Most names a process interns; past it, [`name`] returns `None` and callers fall back to
/// an owned or generic name.
pub(crate) const MAX_NAMES: usize = 16_384;

static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);

/// `name` as a `&'static str`, leaked the first time the process sees it; `None` once
/// [`MAX_NAMES`] names are interned.
pub(crate) fn name(name: &str) -> Option<&'static str> {
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(&interned) = names.get(name) {
        return Some(interned);
    }
    if names.len() >= MAX_NAMES {
        return None;
    }
    let leaked: &'static str = Box::leak(Box::<str>::from(name));
    names.insert(leaked);
    Some(leaked)
}

/// `parts` concatenated and interned, formatted only the first time.
pub(crate) fn joined(parts: &[&str]) -> Option<&'static str> {
    name(&parts.concat())
}

/// Serialises the tests that count or fill the process-wide tables, so that a test runner
/// with threads (`cargo test`) sees the counts of one test at a time.
#[cfg(test)]
pub(crate) fn test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many names the process has interned.
#[cfg(all(test, feature = "metrics", feature = "grpc"))]
pub(crate) fn name_count() -> usize {
    NAMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or(0, HashSet::len)
}

#[cfg(feature = "metrics")]
pub(crate) use registry::{gauge, histogram};

#[cfg(all(test, feature = "metrics", feature = "grpc"))]
pub(crate) use registry::handle_count;

#[cfg(feature = "metrics")]
mod registry {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};

    use metrics::{Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder};

    /// Most handles a process keeps; past it, handles are registered each time (correct, but
    /// the recorder's registry is searched again).
    const MAX_HANDLES: usize = 65_536;

    const METADATA: Metadata<'static> =
        Metadata::new("sightline_http", metrics::Level::INFO, Some(module_path!()));

    /// A registered handle, by recorder and key. The recorder is told apart by its address:
    /// a recorder installed later, or a test's local recorder, gets handles of its own.
    #[derive(Default)]
    struct Handles {
        histograms: HashMap<(usize, Key), Histogram>,
        gauges: HashMap<(usize, Key), Gauge>,
    }

    static HANDLES: Mutex<Option<Handles>> = Mutex::new(None);

    fn recorder_id(recorder: &dyn Recorder) -> usize {
        std::ptr::from_ref(recorder).cast::<()>().addr()
    }

    fn handle<T: Clone>(
        name: &'static str,
        labels: Vec<Label>,
        map: impl FnOnce(&mut Handles) -> &mut HashMap<(usize, Key), T>,
        register: impl FnOnce(&dyn Recorder, &Key) -> T,
    ) -> T {
        let key = Key::from_parts(KeyName::from_const_str(name), labels);
        metrics::with_recorder(|recorder| {
            let mut handles = HANDLES.lock().unwrap_or_else(PoisonError::into_inner);
            let handles = map(handles.get_or_insert_with(Handles::default));
            let id = (recorder_id(recorder), key);
            if let Some(handle) = handles.get(&id) {
                return handle.clone();
            }
            let handle = register(recorder, &id.1);
            if handles.len() < MAX_HANDLES {
                handles.insert(id, handle.clone());
            }
            handle
        })
    }

    /// The histogram `name` with `labels`, registered once per process and recorder.
    pub(crate) fn histogram(name: &'static str, labels: Vec<Label>) -> Histogram {
        handle(
            name,
            labels,
            |h| &mut h.histograms,
            |recorder, key| recorder.register_histogram(key, &METADATA),
        )
    }

    /// The gauge `name` with `labels`, registered once per process and recorder.
    pub(crate) fn gauge(name: &'static str, labels: Vec<Label>) -> Gauge {
        handle(
            name,
            labels,
            |h| &mut h.gauges,
            |recorder, key| recorder.register_gauge(key, &METADATA),
        )
    }

    /// How many handles the process keeps.
    #[cfg(all(test, feature = "grpc"))]
    pub(crate) fn handle_count() -> usize {
        HANDLES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(0, |h| h.histograms.len() + h.gauges.len())
    }
}

/// Slots in a [`HandleCache`]; a key past them falls back to [`histogram`]'s registry.
#[cfg(feature = "metrics")]
const SLOTS: usize = 16;

/// A small lock-free map from a non-zero `u32` key to a lazily made handle.
#[cfg(feature = "metrics")]
pub(crate) struct HandleCache<T> {
    keys: [AtomicU32; SLOTS],
    values: [OnceLock<T>; SLOTS],
}

#[cfg(feature = "metrics")]
impl<T> Default for HandleCache<T> {
    fn default() -> Self {
        Self {
            keys: Default::default(),
            values: Default::default(),
        }
    }
}

#[cfg(feature = "metrics")]
impl<T> HandleCache<T> {
    /// The handle for `key` (non-zero), made with `make` the first time; `None` when full.
    pub(crate) fn get_or_insert_with(&self, key: u32, make: impl FnOnce() -> T) -> Option<&T> {
        debug_assert_ne!(key, 0);
        let start = (key as usize).wrapping_mul(0x9e37_79b9) % SLOTS;
        for probe in 0..SLOTS {
            let slot = (start + probe) % SLOTS;
            let current = self.keys[slot].load(Ordering::Acquire);
            let claimed = current == key
                || (current == 0
                    && match self.keys[slot].compare_exchange(
                        0,
                        key,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(other) => other == key,
                    });
            if claimed {
                return Some(self.values[slot].get_or_init(make));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "metrics")]
    #[test]
    fn cache_returns_same_handle_and_reports_full() {
        let cache: HandleCache<u32> = HandleCache::default();
        for key in 1..=SLOTS as u32 {
            assert_eq!(
                cache.get_or_insert_with(key, || key * 10),
                Some(&(key * 10))
            );
        }
        for key in 1..=SLOTS as u32 {
            assert_eq!(cache.get_or_insert_with(key, || 0), Some(&(key * 10)));
        }
        assert_eq!(cache.get_or_insert_with(SLOTS as u32 + 1, || 0), None);
    }

    #[test]
    fn names_are_interned_once() {
        let _lock = test_lock();
        let a = name("intern.test/A").expect("room");
        let b = joined(&["intern.test", "/A"]).expect("room");
        assert!(std::ptr::eq(a, b));
    }
}

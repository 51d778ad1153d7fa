//! [`NonBlocking`]: a bounded in-memory buffer drained to a `Write` by a background thread.

use std::fmt;
use std::io::{self, Write};
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use crate::time;

const DEFAULT_CAPACITY: usize = 8 * 1024 * 1024;
const DEFAULT_DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

struct State {
    /// Lines waiting for the worker; never longer than the capacity.
    buf: Vec<u8>,
    /// Set by the [`WorkerGuard`]; later lines are dropped and counted.
    closed: bool,
    /// What the worker is doing; decides whether a new line is worth a wake-up (a syscall).
    worker: WorkerState,
}

/// The worker's state, as producers see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WorkerState {
    /// Writing a batch: it looks at the buffer again when done.
    Busy,
    /// Letting a batch build up for a few milliseconds after a write: woken only when the
    /// buffer passes its high-water mark. Under load this is where it lives, so a line costs
    /// no wake-up and a batch costs one `write`.
    Lingering,
    /// Asleep with nothing to write: the next line wakes it.
    Idle,
}

/// How long the worker lets lines accumulate after a write before writing again.
const LINGER: Duration = Duration::from_millis(5);

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    /// Set by the worker when it has written everything and stopped.
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` inconsistent (appends are whole).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: &[u8]) {
        let mut st = self.lock();
        if st.closed || st.buf.len() + line.len() > self.capacity {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        st.buf.extend_from_slice(line);
        let wake = match st.worker {
            WorkerState::Idle => true,
            WorkerState::Lingering => st.buf.len() >= self.capacity / 2,
            WorkerState::Busy => false,
        };
        if wake {
            st.worker = WorkerState::Busy;
        }
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// A [`MakeWriter`] and [`io::Write`] that never blocks the caller: lines are copied into a
/// bounded in-memory buffer and written to the real sink (stdout by default) by a background
/// thread.
///
/// # Guarantees
///
/// - **Never blocks on I/O.** A write takes a mutex for one `memcpy` of the line and, only when
///   the worker is asleep, wakes it. A slow or stuck sink never slows the application.
/// - **Whole lines or nothing.** Each `write` call is one record. If it does not fit in the
///   remaining capacity (default 8 MiB) it is dropped whole and counted in
///   [`dropped_lines`](Self::dropped_lines); a record is never split or interleaved with
///   another. `write` always reports the full length as written, so callers never retry.
///   [`JsonLayer`](crate::JsonLayer) writes each line with one call.
/// - **Drops are reported.** The worker writes a line to the sink, at most once per interval
///   (default 10 s) and once more at shutdown, saying how many lines were dropped since the
///   last report:
///   `{"timestamp":"…","level":"WARN","target":"sightline_logging","message":"dropped log lines","fields":{"dropped":17}}`
///   (always with these default key names).
/// - **Flush on shutdown.** Dropping the [`WorkerGuard`] writes out everything buffered,
///   flushes the sink and stops the thread, waiting at most one second (configurable). Lines
///   written after that are dropped and counted.
///
/// Memory is bounded by twice the capacity: the buffer being filled and the one being written.
/// [`flush`](io::Write::flush) does not wait for the worker.
///
/// ```
/// use sightline_logging::{JsonLayer, NonBlocking};
/// use tracing_subscriber::prelude::*;
///
/// let (writer, guard) = NonBlocking::builder()
///     .capacity_bytes(1024 * 1024)
///     .build(std::io::stderr());
/// let subscriber = tracing_subscriber::registry()
///     .with(JsonLayer::builder().writer(writer.clone()).build());
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// drop(guard); // writes out "hello" before returning
/// assert_eq!(writer.dropped_lines(), 0);
/// ```
#[derive(Clone)]
pub struct NonBlocking {
    shared: Arc<Shared>,
}

impl fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlocking")
            .field("capacity_bytes", &self.shared.capacity)
            .field("dropped_lines", &self.dropped_lines())
            .finish()
    }
}

impl NonBlocking {
    /// Starts a worker thread writing to `w`, with the default configuration (8 MiB buffer).
    ///
    /// Keep the returned [`WorkerGuard`] alive as long as lines are written (usually in
    /// `main`); dropping it flushes and stops the worker.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn new<W: Write + Send + 'static>(w: W) -> (NonBlocking, WorkerGuard) {
        NonBlocking::builder().build(w)
    }

    /// Starts configuring a writer; see [`NonBlockingBuilder`].
    pub fn builder() -> NonBlockingBuilder {
        NonBlockingBuilder {
            capacity_bytes: DEFAULT_CAPACITY,
            drop_warning_interval: DEFAULT_DROP_WARNING_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    /// Lines dropped since start because the buffer was full or the worker had stopped.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Write for &NonBlocking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for NonBlocking {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = &'a NonBlocking;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

/// Builder for [`NonBlocking`], from [`NonBlocking::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct NonBlockingBuilder {
    capacity_bytes: usize,
    drop_warning_interval: Duration,
    shutdown_timeout: Duration,
}

impl NonBlockingBuilder {
    /// Bytes the buffer may hold before lines are dropped. Defaults to 8 MiB.
    ///
    /// A line longer than this is always dropped.
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity_bytes = bytes;
        self
    }

    /// Least time between two "dropped log lines" reports. Defaults to 10 seconds; values
    /// under 1 ms are raised to 1 ms (it is also how often an idle worker wakes up).
    pub fn drop_warning_interval(mut self, interval: Duration) -> Self {
        self.drop_warning_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long dropping the [`WorkerGuard`] waits for the worker to write out the buffer.
    /// Defaults to 1 second; after that the worker is left to finish on its own.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Starts the worker thread writing to `w`.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread.
    pub fn build<W: Write + Send + 'static>(self, w: W) -> (NonBlocking, WorkerGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buf: Vec::new(),
                closed: false,
                worker: WorkerState::Busy,
            }),
            wake: Condvar::new(),
            capacity: self.capacity_bytes,
            dropped: AtomicU64::new(0),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        });
        let worker = Worker {
            shared: Arc::clone(&shared),
            sink: w,
            interval: self.drop_warning_interval,
        };
        let handle = thread::Builder::new()
            .name("sightline-logging".into())
            .spawn(move || worker.run())
            .expect("the log writer needs its thread; the OS refused to start one");
        (
            NonBlocking {
                shared: Arc::clone(&shared),
            },
            WorkerGuard {
                shared,
                handle: Some(handle),
                timeout: self.shutdown_timeout,
            },
        )
    }
}

struct Worker<W> {
    shared: Arc<Shared>,
    sink: W,
    interval: Duration,
}

/// Marks the worker done even if the sink panics, so the guard does not wait in vain.
struct DoneOnDrop(Arc<Shared>);

impl Drop for DoneOnDrop {
    fn drop(&mut self) {
        *self.0.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.done_cv.notify_all();
    }
}

impl<W: Write> Worker<W> {
    fn run(mut self) {
        let _done = DoneOnDrop(Arc::clone(&self.shared));
        // Two buffers swap roles, so steady state allocates nothing.
        let mut batch = Vec::new();
        let mut reported = 0u64;
        let mut last_report = Instant::now();
        let mut just_wrote = false;
        loop {
            let closed = {
                let mut st = self.shared.lock();
                if !st.closed {
                    // After a write, linger so that the next batch builds up; with nothing
                    // written and nothing buffered, sleep until a line arrives.
                    let (state, wait) = if just_wrote {
                        (WorkerState::Lingering, LINGER)
                    } else if st.buf.is_empty() {
                        (WorkerState::Idle, self.interval)
                    } else {
                        (WorkerState::Busy, Duration::ZERO)
                    };
                    if !wait.is_zero() {
                        st.worker = state;
                        st = self
                            .shared
                            .wake
                            .wait_timeout(st, wait)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                    st.worker = WorkerState::Busy;
                }
                mem::swap(&mut st.buf, &mut batch);
                st.closed
            };
            let mut wrote = false;
            if !batch.is_empty() {
                // A failing sink loses this batch; there is nowhere better to report it.
                let _ = self.sink.write_all(&batch);
                batch.clear();
                wrote = true;
            }
            let dropped = self.shared.dropped.load(Ordering::Relaxed);
            if dropped > reported && (closed || last_report.elapsed() >= self.interval) {
                let _ = self.sink.write_all(&drop_warning(dropped - reported));
                reported = dropped;
                last_report = Instant::now();
                wrote = true;
            }
            if wrote || closed {
                let _ = self.sink.flush();
            }
            just_wrote = wrote;
            if closed {
                return;
            }
        }
    }
}

/// The line reporting `n` dropped lines.
fn drop_warning(n: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(160);
    v.extend_from_slice(b"{\"timestamp\":\"");
    time::write_now(&mut v);
    v.extend_from_slice(
        b"\",\"level\":\"WARN\",\"target\":\"sightline_logging\",\"message\":\"dropped log lines\",\"fields\":{\"dropped\":",
    );
    v.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    v.extend_from_slice(b"}}\n");
    v
}

/// Flushes and stops the [`NonBlocking`] worker when dropped.
///
/// Dropping it writes out every buffered line, reports lines dropped since the last report,
/// flushes the sink and waits for the thread, for at most the
/// [shutdown timeout](NonBlockingBuilder::shutdown_timeout) (default 1 second) so a stuck sink
/// cannot hang the process on exit. Lines written after the guard is dropped are dropped and
/// counted. Keep it in `main`: `let _guard = ...;` (not `let _ = ...;`, which drops it at once).
#[must_use = "dropping the guard stops the log writer; keep it alive, e.g. `let _guard = ...`"]
pub struct WorkerGuard {
    shared: Arc<Shared>,
    handle: Option<thread::JoinHandle<()>>,
    timeout: Duration,
}

impl fmt::Debug for WorkerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerGuard")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.closed = true;
        drop(st);
        self.shared.wake.notify_one();

        let deadline = Instant::now() + self.timeout;
        let mut done = self
            .shared
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while !*done {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                // The sink is stuck: leave the thread to finish (or not) on its own.
                return;
            };
            done = self
                .shared
                .done_cv
                .wait_timeout(done, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(done);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use serde_json::Value;

    use super::*;

    /// A sink that records what it is given; it can be made to block on its first write.
    #[derive(Clone, Default)]
    struct Recorder {
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Recorder {
        fn text(&self) -> String {
            String::from_utf8(self.out.lock().expect("lock").clone()).expect("UTF-8")
        }
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.out.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Blocks in its first write until `release` receives, after telling `entered`.
    struct Blocked {
        inner: Recorder,
        entered: Option<mpsc::Sender<()>>,
        release: mpsc::Receiver<()>,
    }

    impl Write for Blocked {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(entered) = self.entered.take() {
                entered.send(()).expect("test waits");
                let _ = self.release.recv();
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(i: usize) -> Vec<u8> {
        // 30 bytes each.
        format!("{{\"n\":{i:3},\"pad\":\"0123456789a\"}}\n").into_bytes()
    }

    #[test]
    fn drops_whole_lines_and_counts_when_full() {
        let rec = Recorder::default();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let (writer, guard) = NonBlocking::builder().capacity_bytes(100).build(Blocked {
            inner: rec.clone(),
            entered: Some(entered_tx),
            release: release_rx,
        });
        assert_eq!(line(0).len(), 30);
        let mut w = &writer;
        w.write_all(&line(0)).expect("never fails");
        entered
            .recv_timeout(Duration::from_secs(5))
            .expect("worker is writing line 0");
        // The worker is stuck: 3 more lines fit in 100 bytes, the 4th would not.
        let started = Instant::now();
        for i in 1..=10 {
            w.write_all(&line(i)).expect("never fails");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "writes never block"
        );
        assert_eq!(writer.dropped_lines(), 7);

        release.send(()).expect("worker waits");
        drop(guard);
        let text = rec.text();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("whole JSON lines only"))
            .collect();
        let kept: Vec<u64> = lines.iter().filter_map(|l| l["n"].as_u64()).collect();
        assert_eq!(kept, [0, 1, 2, 3]);
        let warning = lines.last().expect("a drop report");
        assert_eq!(warning["level"], "WARN");
        assert_eq!(warning["target"], "sightline_logging");
        assert_eq!(warning["message"], "dropped log lines");
        assert_eq!(warning["fields"]["dropped"], 7);
        // After shutdown lines are counted as dropped.
        w.write_all(&line(11)).expect("never fails");
        assert_eq!(writer.dropped_lines(), 8);
    }

    #[test]
    fn periodic_drop_report_counts_since_last_report() {
        let rec = Recorder::default();
        let (writer, guard) = NonBlocking::builder()
            .capacity_bytes(40)
            .drop_warning_interval(Duration::from_millis(20))
            .build(rec.clone());
        let mut w = &writer;
        w.write_all(&[b'x'; 41]).expect("never fails");
        w.write_all(&[b'x'; 41]).expect("never fails");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rec.text().contains("\"dropped\":2}") {
            assert!(Instant::now() < deadline, "no report: {:?}", rec.text());
            thread::sleep(Duration::from_millis(5));
        }
        w.write_all(&[b'x'; 41]).expect("never fails");
        drop(guard);
        let text = rec.text();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|l| l.contains("\"dropped\":1}"))
        );
        assert_eq!(writer.dropped_lines(), 3);
    }

    #[test]
    fn guard_flushes_everything_on_drop() {
        let rec = Recorder::default();
        let (writer, guard) = NonBlocking::new(rec.clone());
        let mut w = writer.clone();
        for i in 0..10_000 {
            w.write_all(&line(i % 1000)).expect("never fails");
        }
        drop(guard);
        assert_eq!(rec.text().lines().count(), 10_000);
        assert_eq!(writer.dropped_lines(), 0);
    }

    #[test]
    fn guard_waits_a_bounded_time_for_a_stuck_sink() {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let (writer, guard) = NonBlocking::builder()
            .shutdown_timeout(Duration::from_millis(50))
            .build(Blocked {
                inner: Recorder::default(),
                entered: Some(entered_tx),
                release: release_rx,
            });
        (&writer).write_all(b"line\n").expect("never fails");
        entered
            .recv_timeout(Duration::from_secs(5))
            .expect("writing");
        let started = Instant::now();
        drop(guard);
        assert!(started.elapsed() < Duration::from_secs(2));
        release.send(()).expect("worker still alive");
    }

    #[test]
    fn works_as_make_writer() {
        let rec = Recorder::default();
        let (writer, guard) = NonBlocking::new(rec.clone());
        writer.make_writer().write_all(b"a\n").expect("never fails");
        assert!(format!("{writer:?}").contains("capacity_bytes: 8388608"));
        assert!(format!("{guard:?}").contains("WorkerGuard"));
        drop(guard);
        assert_eq!(rec.text(), "a\n");
    }
}

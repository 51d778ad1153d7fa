//! Example binaries run as a user would run them: a child process listening on `ADDR`, its
//! stdout captured line by line.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::{poll_until, poll_until_blocking};

/// How long a process may take to accept connections.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`ExampleProcess::terminate`] waits after SIGTERM before it kills.
pub const TERMINATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variables removed from every child so the test machine's settings do not leak
/// into a test (each test sets what it needs).
const SCRUBBED_ENV: &[&str] = &[
    "ADDR",
    "METRICS_ADDR",
    "RUST_LOG",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_LOGS_EXPORTER",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SDK_DISABLED",
    "OTEL_PROPAGATORS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

type Lines = Arc<Mutex<Vec<Vec<u8>>>>;

fn lock(lines: &Lines) -> MutexGuard<'_, Vec<Vec<u8>>> {
    lines.lock().unwrap_or_else(|p| p.into_inner())
}

/// The target directory that holds this test executable (`<target>/debug/deps/<test>-<hash>`
/// gives `<target>/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let deps = exe.parent().expect("the test executable is in a directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// Where `cargo build -p <package>` puts the binary of an example package.
pub fn binary_path(package: &str) -> PathBuf {
    profile_dir().join(format!("{package}{}", std::env::consts::EXE_SUFFIX))
}

/// A running example binary.
///
/// Dropping it kills the process; [`terminate`](Self::terminate) stops it the way an operator
/// would (SIGTERM) and lets it flush.
#[derive(Debug)]
pub struct ExampleProcess {
    package: String,
    child: Child,
    addr: SocketAddr,
    stdout: Lines,
    stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

fn capture(stream: impl Read + Send + 'static, lines: Lines) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    lock(&lines).push(line);
                }
            }
        }
    })
}

impl ExampleProcess {
    /// Starts the binary of `package` with `ADDR=127.0.0.1:0` and `env` on top, and waits (up
    /// to [`STARTUP_TIMEOUT`]) for its `listening` log line, which names the address the
    /// process bound; then checks that the address accepts connections.
    ///
    /// Letting the process pick its port (rather than picking a free one here and passing it
    /// on) leaves no window in which another test can take the port first. An `ADDR` in `env`
    /// overrides this. `METRICS_ADDR=127.0.0.1:0` is set too, for examples that serve metrics
    /// on a port of their own (they name it in the same line; see
    /// [`listening_addr`](Self::listening_addr)).
    ///
    /// Panics with the way to fix it when the binary has not been built, and with the
    /// process's output when it exits before listening.
    pub async fn start(package: &str, env: &[(&str, &str)]) -> Self {
        let path = binary_path(package);
        assert!(
            path.is_file(),
            "example binary {} not found; build it first: cargo build -p {package}",
            path.display()
        );
        let mut cmd = Command::new(&path);
        for key in SCRUBBED_ENV {
            cmd.env_remove(key);
        }
        cmd.env("ADDR", "127.0.0.1:0")
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let stdout = Lines::default();
        let stderr = Lines::default();
        let readers = vec![
            capture(
                child.stdout.take().expect("stdout is piped"),
                stdout.clone(),
            ),
            capture(
                child.stderr.take().expect("stderr is piped"),
                stderr.clone(),
            ),
        ];
        let mut process = Self {
            package: package.to_owned(),
            child,
            stdout,
            stderr,
            readers,
            exit: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        process.wait_until_listening().await;
        process
    }

    /// The address in the first JSON line whose `message` is `listening` (its `fields.addr`).
    fn announced_addr(&self) -> Option<SocketAddr> {
        self.listening_addr("addr")
    }

    /// Field `key` of the first JSON line whose `message` is `listening`, read as a socket
    /// address: `listening_addr("metrics_addr")` for an example that serves its metrics on a
    /// second port.
    pub fn listening_addr(&self, key: &str) -> Option<SocketAddr> {
        lock(&self.stdout).iter().find_map(|line| {
            let value: serde_json::Value = serde_json::from_slice(line).ok()?;
            if value.get("message")?.as_str()? != "listening" {
                return None;
            }
            let fields = value.get("fields").unwrap_or(&value);
            fields.get(key)?.as_str()?.parse().ok()
        })
    }

    async fn wait_until_listening(&mut self) {
        let mut exited = None;
        let mut addr = None;
        let ready = poll_until(STARTUP_TIMEOUT, Duration::from_millis(20), || {
            let result = if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
                Some(false)
            } else {
                addr = addr.or_else(|| self.announced_addr());
                addr.and_then(|addr| {
                    TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                        .ok()
                        .map(|_| true)
                })
            };
            std::future::ready(result)
        })
        .await;
        if let Some(addr) = addr {
            self.addr = addr;
        }
        let addr = self.addr;
        match ready {
            Some(true) => {}
            Some(false) => {
                self.exit = exited;
                self.join_readers();
                panic!(
                    "{} exited with {:?} before listening (last address {addr})\n{}",
                    self.package,
                    exited,
                    self.output_report()
                );
            }
            None => panic!(
                "{} announced no `listening` address that accepts connections within \
                 {STARTUP_TIMEOUT:?} (last address {addr})\n{}",
                self.package,
                self.output_report()
            ),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stdout so far, one entry per line (without the newline), decoded lossily.
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout)
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// Stdout so far, one entry per line, as raw bytes.
    pub fn stdout_raw(&self) -> Vec<Vec<u8>> {
        lock(&self.stdout).clone()
    }

    /// Stderr so far, one entry per line, decoded lossily.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.stderr)
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// Polls stdout until a line satisfies `pred`, up to `timeout`; returns that line.
    pub async fn wait_for_stdout(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        poll_until(timeout, Duration::from_millis(20), || {
            std::future::ready(self.stdout_lines().into_iter().find(|l| pred(l)))
        })
        .await
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            Err(_) => false,
        }
    }

    /// The exit status, once it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.is_running();
        self.exit
    }

    /// Sends SIGTERM, waits up to [`TERMINATE_TIMEOUT`] for the process to exit (it should
    /// flush its exporters first) and kills it after that. Returns the exit status and
    /// whether it exited by itself; stdout and stderr are complete afterwards.
    pub async fn terminate(&mut self) -> (ExitStatus, bool) {
        if let Some(status) = self.exit_status() {
            self.join_readers();
            return (status, true);
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "kill -TERM {} failed: {sent:?}",
            self.child.id()
        );
        let status = poll_until(TERMINATE_TIMEOUT, Duration::from_millis(20), || {
            std::future::ready(self.child.try_wait().ok().flatten())
        })
        .await;
        let (status, by_itself) = match status {
            Some(s) => (s, true),
            None => {
                let _ = self.child.kill();
                (self.child.wait().expect("wait for a killed child"), false)
            }
        };
        self.exit = Some(status);
        self.join_readers();
        (status, by_itself)
    }

    fn join_readers(&mut self) {
        // The pipes close when the process exits, unless it left a grandchild holding them;
        // bound the wait so that cannot hang a test.
        let readers = std::mem::take(&mut self.readers);
        let _ = poll_until_blocking(Duration::from_secs(5), Duration::from_millis(10), || {
            readers.iter().all(|r| r.is_finished()).then_some(())
        });
    }

    /// Stdout and stderr, for failure messages.
    pub fn output_report(&self) -> String {
        // Each lock is taken and released on its own: a guard kept for the whole `format!`
        // would deadlock with the lock inside `stdout_lines`.
        let stdout = self.stdout_lines();
        let stderr = self.stderr_lines();
        format!(
            "--- stdout ({} lines) ---\n{}\n--- stderr ({} lines) ---\n{}",
            stdout.len(),
            stdout.join("\n"),
            stderr.len(),
            stderr.join("\n")
        )
    }
}

impl Drop for ExampleProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

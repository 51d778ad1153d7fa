//! gRPC parts for the suites: the code generated from `tests/proto` (the `Echo` test service)
//! and `examples/grpc/proto` (the example's `Greeter`), an [`EchoService`] that does every
//! kind of RPC on request, and [`GrpcServer`], a tonic server on `127.0.0.1:0` with whatever
//! layers the test puts on it.
//!
//! ```no_run
//! # async fn demo() {
//! use sightline_tests::grpc::echo::echo_server::EchoServer;
//! use sightline_tests::grpc::{EchoService, GrpcServer};
//!
//! let echo = EchoService::default();
//! let router = tonic::transport::Server::builder()
//!     // .layer(the layer under test)
//!     .add_service(EchoServer::new(echo.clone()));
//! let server = GrpcServer::start(router).await;
//! let channel = server.channel().await;
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt as _};
use tonic::metadata::MetadataMap;
use tonic::service::Routes;
use tonic::transport::server::{Router, TcpIncoming};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status, Streaming};

/// The `sightline.test.v1` package: the `Echo` service (`tests/proto/sightline/test/v1/echo.proto`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod echo {
    tonic::include_proto!("sightline.test.v1");
}

/// The `sightline.example.v1` package: the `Greeter` service of `example-grpc`
/// (`examples/grpc/proto/sightline/example/v1/greeter.proto`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod greeter {
    tonic::include_proto!("sightline.example.v1");
}

use echo::echo_server::Echo;
use echo::{EchoReply, EchoRequest};

/// How long [`GrpcServer::channel`] keeps trying to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `Box<dyn Error + Send + Sync>`, what tonic accepts as an error of a layered service.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed stream of replies, as the server-streaming methods return.
pub type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

/// One call as [`EchoService`] saw it.
#[derive(Clone, Debug)]
pub struct ReceivedCall {
    /// `Unary`, `ServerStream`, `ClientStream` or `Bidi`.
    pub method: &'static str,
    /// The request metadata as it reached the service (after every server layer).
    pub metadata: MetadataMap,
}

/// The `Echo` service; see `tests/proto/sightline/test/v1/echo.proto` for what each method
/// does. Clones share the record of calls.
#[derive(Clone, Debug, Default)]
pub struct EchoService {
    calls: Arc<Mutex<Vec<ReceivedCall>>>,
}

fn lock(calls: &Mutex<Vec<ReceivedCall>>) -> MutexGuard<'_, Vec<ReceivedCall>> {
    calls.lock().unwrap_or_else(|p| p.into_inner())
}

/// A unary request with this message makes the handler panic.
pub const PANIC_MESSAGE: &str = "panic, please";

/// The status a request asks for, if any.
fn requested_failure(request: &EchoRequest) -> Option<Status> {
    (request.fail_code != 0).then(|| {
        Status::new(
            Code::from_i32(request.fail_code),
            format!("failure requested: {}", request.message),
        )
    })
}

fn delay(request: &EchoRequest) -> Duration {
    Duration::from_millis(u64::from(request.delay_ms))
}

/// Sends `request.count` replies (at least one) to `tx`, each after `request.delay_ms`, and
/// the requested failure after `fail_after` of them; `false` once the call should end (the
/// failure was sent, or the client went away).
async fn answer(request: &EchoRequest, tx: &mpsc::Sender<Result<EchoReply, Status>>) -> bool {
    let failure = requested_failure(request);
    let count = request.count.max(1);
    for index in 0..count {
        if let Some(status) = &failure
            && index == request.fail_after
        {
            let _ = tx.send(Err(status.clone())).await;
            return false;
        }
        tokio::time::sleep(delay(request)).await;
        let reply = EchoReply {
            message: request.message.clone(),
            index,
        };
        if tx.send(Ok(reply)).await.is_err() {
            return false;
        }
    }
    match failure {
        Some(status) => {
            let _ = tx.send(Err(status)).await;
            false
        }
        None => true,
    }
}

impl EchoService {
    /// Every call received so far, in order of arrival.
    pub fn calls(&self) -> Vec<ReceivedCall> {
        lock(&self.calls).clone()
    }

    fn record<T>(&self, method: &'static str, request: &Request<T>) {
        lock(&self.calls).push(ReceivedCall {
            method,
            metadata: request.metadata().clone(),
        });
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn unary(&self, request: Request<EchoRequest>) -> Result<Response<EchoReply>, Status> {
        self.record("Unary", &request);
        let request = request.into_inner();
        // A handler bug, on request: what a server layer must turn into an answer.
        assert!(
            request.message != PANIC_MESSAGE,
            "the echo service panics on request"
        );
        tokio::time::sleep(delay(&request)).await;
        if let Some(status) = requested_failure(&request) {
            return Err(status);
        }
        Ok(Response::new(EchoReply {
            message: request.message,
            index: 0,
        }))
    }

    type ServerStreamStream = ReplyStream;

    async fn server_stream(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamStream>, Status> {
        self.record("ServerStream", &request);
        let request = request.into_inner();
        // Failing before the first message is a trailers-only answer: the handler's error
        // goes out as the status in the response headers.
        if request.fail_after == 0
            && let Some(status) = requested_failure(&request)
        {
            return Err(status);
        }
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            answer(&request, &tx).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn client_stream(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoReply>, Status> {
        self.record("ClientStream", &request);
        let mut inbound = request.into_inner();
        let mut first = None;
        let mut messages = Vec::new();
        while let Some(request) = inbound.next().await {
            let request = request?;
            messages.push(request.message.clone());
            first.get_or_insert(request);
        }
        if let Some(first) = &first {
            tokio::time::sleep(delay(first)).await;
            if let Some(status) = requested_failure(first) {
                return Err(status);
            }
        }
        Ok(Response::new(EchoReply {
            message: messages.join(","),
            index: u32::try_from(messages.len()).unwrap_or(u32::MAX),
        }))
    }

    type BidiStream = ReplyStream;

    async fn bidi(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidiStream>, Status> {
        self.record("Bidi", &request);
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while let Some(request) = inbound.next().await {
                match request {
                    Ok(request) => {
                        if !answer(&request, &tx).await {
                            return;
                        }
                    }
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// A tonic server on `127.0.0.1:0` in the current runtime; stopped on drop.
#[derive(Debug)]
pub struct GrpcServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl GrpcServer {
    /// Serves `router` (a `Server::builder()` with its layers and services) on a port of its
    /// own.
    pub async fn start<L, ResBody>(router: Router<L>) -> Self
    where
        L: tower_layer::Layer<Routes> + Send + 'static,
        L::Service: tower_service::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<ResBody>,
            > + Clone
            + Send
            + 'static,
        <L::Service as tower_service::Service<http::Request<tonic::body::Body>>>::Future: Send,
        <L::Service as tower_service::Service<http::Request<tonic::body::Body>>>::Error:
            Into<BoxError> + Send,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a gRPC server on 127.0.0.1:0");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(router.serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, a channel target.
    pub fn uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel to it; panics if it cannot connect within [`CONNECT_TIMEOUT`].
    pub async fn channel(&self) -> Channel {
        connect(&self.uri()).await
    }

    /// Stops accepting, lets the calls in flight finish, and waits (up to 10 s) for the
    /// server to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = &mut self.task;
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A channel to `uri` (`http://host:port`), connected before it is returned; panics if that
/// does not happen within [`CONNECT_TIMEOUT`].
pub async fn connect(uri: &str) -> Channel {
    let endpoint = Endpoint::from_shared(uri.to_owned())
        .unwrap_or_else(|e| panic!("bad endpoint {uri}: {e}"))
        .connect_timeout(Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
    // Bounded by the deadline; each round tries one connection.
    loop {
        match endpoint.connect().await {
            Ok(channel) => return channel,
            Err(e) if tokio::time::Instant::now() >= deadline => {
                panic!("cannot connect to {uri} within {CONNECT_TIMEOUT:?}: {e:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

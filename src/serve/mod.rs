//! `captioner serve`: the captioner behind HTTP, for programs (`POST /v1/caption`) and people (a page
//! at `/`).
//!
//!   connection (at most `max_connections`; headers within `header_timeout`) -> body, refused at
//!   `max_body_bytes`, within `body_timeout` or 408, each piece charged to the upload budget as it
//!   arrives (503 when the budget is spent) -> a place (at most `queue` + `max_batch` requests wait
//!   for or are in the compute pool; the next gets 503) -> the job queue -> the batcher thread:
//!   the first job, then more until `max_batch` or `max_wait` after the first -> the compute pool
//!   (rayon, `--threads`): every photo of the batch at once, each through `Captioner::caption`
//!   exactly as the `caption` command does -> each request's reply.
//!
//! Memory is bounded by the upload budget: the bodies being received and those waiting or being
//! captioned hold at most `upload_budget_bytes` in all. A stalled upload holds only the bytes it
//! sent, and no place in the queue, so slow clients cannot keep complete requests out.

mod metrics;

use crate::caption::{CaptionOptions, Captioned, Captioner, Timings};
use crate::generate::SearchOptions;
use crate::ground::GroundOptions;
use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics::Metrics;
use rayon::prelude::*;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

pub struct ServeOptions {
    pub addr: SocketAddr,
    /// The search of a request that does not choose its beam.
    pub search: SearchOptions,
    pub ground: Option<GroundOptions>,
    pub max_batch: usize,
    pub max_wait: Duration,
    pub max_body_bytes: usize,
    /// Requests waiting for the compute pool beyond the batch being captioned.
    pub queue: usize,
    /// A connection whose request line and headers have not all arrived this long after it began
    /// waiting for them (a new connection, or an idle kept-alive one) is closed.
    pub header_timeout: Duration,
    /// A request whose body has not all arrived this long after its headers gets 408 (its place
    /// in the queue, taken before the body is read, is held no longer); shutdown waits this long
    /// for the requests in flight.
    pub body_timeout: Duration,
    /// Open connections at most; a further one is closed at once.
    pub max_connections: usize,
    /// Bytes of request bodies held at once, received or arriving, over all requests.
    pub upload_budget_bytes: usize,
}

/// One request's photo on its way to the batcher.
struct Job {
    bytes: Bytes,
    search: SearchOptions,
    enqueued: Instant,
    reply: oneshot::Sender<Result<Reply, String>>,
}

struct Reply {
    captioned: Captioned,
    queued: Duration,
}

/// What the handlers share.
struct Shared {
    /// Set once the model and encoder are loaded: the queue's sending end and the model's name.
    ready: OnceLock<(SyncSender<Job>, String)>,
    /// Bytes of request bodies that may still be held (a permit per byte: a body that arrives a
    /// byte at a time costs what it sends, no more).
    uploads: Arc<Semaphore>,
    permits: Semaphore,
    options: ServeOptions,
    metrics: Arc<Metrics>,
}

/// Binds `options.addr`, prints the address, loads the captioner with `load` (meanwhile `/healthz`
/// answers 503), and serves until Ctrl-C or SIGTERM, finishing the requests in flight.
pub fn serve(
    load: impl FnOnce() -> Result<Captioner> + Send + 'static,
    options: ServeOptions,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    raise_open_files(options.max_connections as u64 + 64);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.addr)
            .await
            .with_context(|| format!("cannot listen on {}", options.addr))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        let permits = Semaphore::new(options.queue + options.max_batch);
        let uploads = Semaphore::new(upload_permits(&options));
        let shared = Arc::new(Shared {
            ready: OnceLock::new(),
            uploads: Arc::new(uploads),
            permits,
            options,
            metrics: Arc::default(),
        });
        let (failed_tx, failed_rx) = oneshot::channel::<anyhow::Error>();
        // The batcher holds no sender: it ends when the handlers' is dropped.
        let loading = Arc::downgrade(&shared);
        let batching = Batching {
            max_batch: shared.options.max_batch,
            max_wait: shared.options.max_wait,
            ground: shared.options.ground,
            metrics: Arc::clone(&shared.metrics),
        };
        let capacity = shared.options.queue + shared.options.max_batch;
        let batcher = std::thread::spawn(move || match load() {
            Ok(captioner) => {
                let (jobs, queue) = sync_channel(capacity);
                let Some(shared) = loading.upgrade() else {
                    return;
                };
                let _ = shared.ready.set((jobs, captioner.name.clone()));
                drop(shared);
                eprintln!("ready");
                run_batcher(&captioner, queue, &batching);
            }
            Err(err) => {
                let _ = failed_tx.send(err);
            }
        });
        let app = router(Arc::clone(&shared));
        let server = serve_connections(listener, app, &shared.options);
        let result = tokio::select! {
            served = server => served.context("the server failed"),
            Ok(err) = failed_rx => Err(err.context("cannot load the model")),
        };
        // The router's copies are gone; dropping the last sender ends the batcher.
        drop(shared);
        if result.is_ok() {
            let _ = tokio::task::spawn_blocking(move || batcher.join()).await;
            eprintln!("stopped");
        }
        result
    })
}

/// Raises this process's soft limit on open files to `wanted` (the connections, the model's files
/// and a margin) where the hard limit allows: many systems start services at 1,024, below the
/// default connection cap. Where it cannot, connections past the limit wait in the kernel's backlog.
fn raise_open_files(wanted: u64) {
    #[cfg(unix)]
    // SAFETY: getrlimit and setrlimit read and write one plain struct owned here.
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Accepts connections until Ctrl-C or SIGTERM, each served by hyper with the header timeout, at
/// most `max_connections` at once; then lets the requests in flight finish, for at most the body
/// timeout. (`axum::serve` builds hyper without a timer: no header timeout, no connection cap.)
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    options: &ServeOptions,
) -> Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    let places = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: give the open connections a moment to end.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap: closed at once, never queued.
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(place);
        });
    }
    // No new connection from here on.
    drop(listener);
    let _ = tokio::time::timeout(options.body_timeout, graceful.shutdown()).await;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.options.max_body_bytes;
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/caption", axum::routing::post(caption))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page: see / and /v1/caption") })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed here: POST a photo to /v1/caption, GET the other paths",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            count_response,
        ))
        .with_state(shared)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    eprintln!("shutting down: finishing the requests in flight");
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// 503 with a hint of when to come back.
fn busy(message: &str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("page.html"),
    )
        .into_response()
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.ready.get() {
        Some(_) => Json(json!({ "status": "ready" })).into_response(),
        None => busy("loading the model"),
    }
}

/// The upload budget in semaphore permits, one per byte (a semaphore holds at most `MAX_PERMITS`).
fn upload_permits(options: &ServeOptions) -> usize {
    options.upload_budget_bytes.min(Semaphore::MAX_PERMITS)
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let permits = shared.options.queue + shared.options.max_batch;
    let held = permits - shared.permits.available_permits();
    let upload_bytes = upload_permits(&shared.options) - shared.uploads.available_permits();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(held, upload_bytes),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CaptionQuery {
    beam: Option<usize>,
    attention: Option<bool>,
}

/// Every response, counted by its status.
async fn count_response(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    shared.metrics.record_status(response.status());
    response
}

async fn caption(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<CaptionQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let start = Instant::now();
    let response = answer(&shared, query, request).await;
    shared.metrics.record_latency(start.elapsed());
    response
}

async fn answer(
    shared: &Shared,
    query: Result<Query<CaptionQuery>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    let Some((jobs, model_name)) = shared.ready.get() else {
        return busy("loading the model");
    };
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad query: beam is a number (1 to 10), attention is true or false",
        );
    };
    let beam = query.beam.unwrap_or(shared.options.search.beam);
    if let Err(reason) = crate::generate::check_beam(beam) {
        return error(StatusCode::BAD_REQUEST, &reason);
    }
    let limit = shared.options.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return too_large(limit);
    }
    let timeout = shared.options.body_timeout;
    let (request, upload) = budgeted(request, &shared.uploads);
    let bytes = match tokio::time::timeout(timeout, read_photo(request, shared)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) if upload.refused.load(Ordering::Relaxed) => {
            return busy("the server is receiving too many uploads: try again shortly")
        }
        Ok(Err(response)) => return response,
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the body did not arrive within {} s (--body-timeout-s)",
                    timeout.as_secs_f64()
                ),
            )
        }
    };
    // Taken once the body is here, held until the reply: a slow upload keeps no one waiting.
    let Ok(_place) = shared.permits.try_acquire() else {
        return busy("the queue is full: try again shortly");
    };
    if bytes.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the photo's bytes, or a multipart form with the field \"image\"",
        );
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        bytes,
        search: SearchOptions {
            beam,
            ..shared.options.search
        },
        enqueued: Instant::now(),
        reply,
    };
    match jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return busy("the queue is full: try again shortly"),
        Err(TrySendError::Disconnected(_)) => {
            return busy("the server is shutting down");
        }
    }
    match answer.await {
        Ok(Ok(reply)) => Json(reply_json(
            &reply,
            model_name,
            query.attention.unwrap_or(false),
        ))
        .into_response(),
        Ok(Err(reason)) => error(StatusCode::BAD_REQUEST, &reason),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the photo was dropped unanswered",
        ),
    }
}

fn too_large(limit: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the body is over the {} MB limit (--max-body-mb)",
            limit / (1024 * 1024)
        ),
    )
}

/// What a request's body has taken from the upload budget, kept until the reply.
#[derive(Default)]
struct Upload {
    permits: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
    /// Whether a piece of the body found the budget spent (the body then breaks off).
    refused: AtomicBool,
}

/// The request with its body charged to `budget` piece by piece as it arrives.
fn budgeted(request: Request, budget: &Arc<Semaphore>) -> (Request, Arc<Upload>) {
    let upload = Arc::new(Upload::default());
    let (parts, body) = request.into_parts();
    let body = BudgetedBody {
        inner: body,
        budget: Arc::clone(budget),
        upload: Arc::clone(&upload),
    };
    (
        Request::from_parts(parts, axum::body::Body::new(body)),
        upload,
    )
}

struct BudgetedBody {
    inner: axum::body::Body,
    budget: Arc<Semaphore>,
    upload: Arc<Upload>,
}

impl http_body::Body for BudgetedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            let bytes = frame.data_ref().map_or(0, |data| data.len());
            let permit = u32::try_from(bytes)
                .ok()
                .and_then(|bytes| Arc::clone(&self.budget).try_acquire_many_owned(bytes).ok());
            match permit {
                Some(permit) => {
                    if let Ok(mut held) = self.upload.permits.lock() {
                        match held.as_mut() {
                            Some(held) => held.merge(permit),
                            None => *held = Some(permit),
                        }
                    }
                }
                None => {
                    self.upload.refused.store(true, Ordering::Relaxed);
                    let spent = axum::Error::new("the upload budget is spent");
                    return std::task::Poll::Ready(Some(Err(spent)));
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The photo's bytes: the body itself, or the field "image" of a multipart form.
async fn read_photo(request: Request, shared: &Shared) -> Result<Bytes, Response> {
    let limit = shared.options.max_body_bytes;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let refused = |status: StatusCode, reason: String| {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else if status.is_server_error() {
            // axum calls a body that stops early or breaks off a server error; it is the client's.
            error(
                StatusCode::BAD_REQUEST,
                &format!("the body could not be read to its end: {reason}"),
            )
        } else {
            error(status, &reason)
        }
    };
    if !multipart {
        return Bytes::from_request(request, &())
            .await
            .map_err(|rejection| refused(rejection.status(), rejection.body_text()));
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|rejection| refused(rejection.status(), rejection.body_text()))?;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("image") => {
                return field
                    .bytes()
                    .await
                    .map_err(|err| refused(err.status(), err.body_text()));
            }
            Ok(Some(_)) => continue,
            Ok(None) => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "the multipart form has no field \"image\"",
                ))
            }
            Err(err) => return Err(refused(err.status(), err.body_text())),
        }
    }
}

fn reply_json(reply: &Reply, model_name: &str, attention: bool) -> serde_json::Value {
    let mut answer = reply.captioned.answer_json(model_name, attention);
    answer["timings_ms"]["queue"] = json!(Timings::milliseconds(reply.queued));
    answer
}

/// What the batcher thread needs to know.
struct Batching {
    max_batch: usize,
    max_wait: Duration,
    ground: Option<GroundOptions>,
    metrics: Arc<Metrics>,
}

/// Takes jobs until every sender is gone: a batch is the first job and whatever else arrives
/// within `max_wait` of it (up to `max_batch`), captioned together on the compute pool.
fn run_batcher(captioner: &Captioner, queue: Receiver<Job>, options: &Batching) {
    while let Ok(first) = queue.recv() {
        let deadline = Instant::now() + options.max_wait;
        let mut batch = vec![first];
        while batch.len() < options.max_batch {
            let wait = deadline.saturating_duration_since(Instant::now());
            match queue.recv_timeout(wait) {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        options.metrics.record_batch(batch.len());
        let started = Instant::now();
        let answers: Vec<Result<Captioned, String>> = batch
            .par_iter()
            .map(|job| {
                captioner
                    .caption(
                        &job.bytes,
                        &CaptionOptions {
                            search: job.search,
                            ground: options.ground,
                            details: false,
                        },
                    )
                    .map_err(|err| format!("{err:#}"))
            })
            .collect();
        for (job, answer) in batch.into_iter().zip(answers) {
            let queued = started - job.enqueued;
            let _ = job
                .reply
                .send(answer.map(|captioned| Reply { captioned, queued }));
        }
    }
}

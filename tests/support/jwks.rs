//! A JWKS provider on port 0 that tests can rotate, slow down or break.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::signing_key;

/// The public JWK of a fixture key, with `kid`.
pub fn jwk(alg: Algorithm, kid: &str) -> Value {
    tokengate::install_crypto_providers();
    let mut jwk = Jwk::from_encoding_key(&signing_key(alg), alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).unwrap()
}

#[derive(Default)]
struct State {
    keys: Vec<Value>,
    max_age: Option<u64>,
    /// Answer with this status instead of the set.
    failing: Option<StatusCode>,
    /// Documents by path (JSON text); any other path with `/.well-known/` is 404.
    documents: std::collections::HashMap<String, String>,
}

/// A running provider; dropping it does not stop it (tests are short).
#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves `keys` at `/jwks.json`.
    pub async fn start(keys: Vec<Value>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, keys)
    }

    /// Serves on an already bound listener (to come up on a known port late).
    pub fn serve_on(listener: TcpListener, keys: Vec<Value>) -> JwksServer {
        let server = JwksServer {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(Mutex::new(State {
                keys,
                ..State::default()
            })),
            hits: Arc::new(AtomicUsize::new(0)),
        };
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<Incoming>| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(s.answer(req.uri().path())) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        self.hits.fetch_add(1, Ordering::SeqCst);
        let state = self.state.lock().unwrap();
        if let Some(status) = state.failing {
            return Response::builder()
                .status(status)
                .body(Full::new(Bytes::from_static(b"down")))
                .unwrap();
        }
        if let Some(doc) = state.documents.get(path) {
            return Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(doc.clone())))
                .unwrap();
        }
        if path.contains("/.well-known/") {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        let mut b = Response::builder().header("content-type", "application/json");
        if let Some(age) = state.max_age {
            b = b.header("cache-control", format!("public, max-age={age}"));
        }
        b.body(Full::new(Bytes::from(json!({ "keys": state.keys }).to_string())))
            .unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        self.state.lock().unwrap().keys = keys;
    }

    pub fn set_max_age(&self, seconds: Option<u64>) {
        self.state.lock().unwrap().max_age = seconds;
    }

    /// Serves `doc` at `path` (a provider's metadata document).
    pub fn set_document(&self, path: &str, doc: Value) {
        self.set_raw_document(path, &doc.to_string());
    }

    /// Serves `text` as JSON at `path`, exactly as written.
    pub fn set_raw_document(&self, path: &str, text: &str) {
        self.state
            .lock()
            .unwrap()
            .documents
            .insert(path.to_owned(), text.to_owned());
    }

    /// The server's origin, `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_failing(&self, status: Option<StatusCode>) {
        self.state.lock().unwrap().failing = status;
    }
}

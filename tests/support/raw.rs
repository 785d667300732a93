//! Raw sockets on both sides of the proxy. `RawApp` is an HTTP/1.1 app that
//! records the exact bytes of every request it read, so an attack test
//! asserts on what the app received rather than on what a client library
//! (or hyper's own server) tidied. `exchange` writes bytes a client library
//! would refuse to send.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the raw app answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// `200 ok`, keep-alive.
    Ok,
    /// `101` switching to this protocol, then echo whatever arrives.
    Switch(&'static str),
    /// Answers the first request on each connection; reads the second and
    /// closes without a word (a keep-alive close racing a request).
    DropSecond,
    /// `200 ok` after this many milliseconds.
    Delay(u64),
}

/// One request as the app read it off the wire.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line, e.g. `GET /x HTTP/1.1`.
    pub line: String,
    /// Header lines as sent, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body bytes after de-chunking.
    pub body: Vec<u8>,
    /// Everything, head and body, as received.
    pub raw: Vec<u8>,
}

impl Received {
    /// Every value of header `name` (lower-case).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The request target.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or("")
    }

    /// True when some header name, with `_` read as `-`, is `name`.
    pub fn has_spelling_of(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n.replace('_', "-") == name)
    }
}

/// The raw app and what it has received.
pub struct RawApp {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
}

impl RawApp {
    /// Starts the app on an ephemeral port.
    pub async fn start(behaviour: Behaviour) -> RawApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (log, count) = (received.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, behaviour, log.clone()));
            }
        });
        RawApp {
            addr,
            received,
            connections,
        }
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, log: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    let mut served = 0usize;
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let head_only = req.method() == "HEAD";
        log.lock().unwrap().push(req);
        served += 1;
        match behaviour {
            Behaviour::Ok => {}
            Behaviour::Delay(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Behaviour::DropSecond if served >= 2 => return,
            Behaviour::DropSecond => {}
            Behaviour::Switch(protocol) => {
                let head =
                    format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {protocol}\r\n\r\n");
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ = w.write_all(&buf).await;
                let _ = tokio::io::copy(&mut r, &mut w).await;
                return;
            }
        }
        let answer: &[u8] = if head_only {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
        };
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Reads one request (head and framed body) from `stream`, keeping any
/// bytes beyond it in `buf`. `None` on EOF or on framing it cannot follow.
async fn read_request<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<Received> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut raw: Vec<u8> = buf.drain(..head_end).collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    if chunked {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(stream, buf).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            raw.extend(buf.drain(..line_end + 2));
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    if let Some(i) = find(buf, b"\r\n") {
                        let done = i == 0;
                        raw.extend(buf.drain(..i + 2));
                        if done {
                            break;
                        }
                    } else {
                        fill(stream, buf).await?;
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                fill(stream, buf).await?;
            }
            body.extend_from_slice(&buf[..size]);
            raw.extend(buf.drain(..size + 2));
        }
    } else if let Some(n) = length {
        while buf.len() < n {
            fill(stream, buf).await?;
        }
        body.extend(buf.drain(..n));
        raw.extend_from_slice(&body);
    }
    Some(Received {
        line,
        headers,
        body,
        raw,
    })
}

async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `bytes` to `addr` and returns everything the proxy answered until
/// it closed the connection or went quiet for `quiet`.
pub async fn exchange_for(addr: SocketAddr, bytes: &[u8], quiet: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, s.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `exchange_for` with a one-second quiet period: enough for a local answer.
pub async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    exchange_for(addr, bytes, Duration::from_secs(1)).await
}

/// The status codes of every response in `text`, in order.
pub fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.")
        .filter(|(i, _)| text.get(i + 8..i + 9) == Some(" "))
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

//! `tokengate revoke`: through Redis for the redis backend, through the
//! running process's admin port for the memory backend.
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use super::{config_failure, load};
use crate::config::RevocationBackend;
use crate::revocation::{Revocation, Revocations};

pub(super) async fn revoke(path: Option<&Path>, revocation: Revocation) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    let result = match &config.revocation.backend {
        RevocationBackend::Redis(_) => match Revocations::new(&config.revocation, config.auth.leeway) {
            Ok(r) => r.revoke(&revocation).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        // The memory mirror lives inside the running process: ask it.
        RevocationBackend::Memory => {
            let mut admin = config.admin.listen;
            if admin.ip().is_unspecified() {
                admin.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            revoke_via_admin(admin, &revocation).await
        }
    };
    match result {
        Ok(seq) => {
            println!("revoked (seq {seq})");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokengate revoke: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn revoke_via_admin(admin: SocketAddr, revocation: &Revocation) -> Result<u64, String> {
    use http_body_util::BodyExt;
    let body = match revocation {
        Revocation::Jti { id, exp } => serde_json::json!({"jti": id, "exp": exp}),
        Revocation::Subject { id, before } => serde_json::json!({"sub": id, "before": before}),
        Revocation::Session { id, exp } => serde_json::json!({"sid": id, "exp": exp}),
    };
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .map_err(|e| format!("cannot reach the admin port {admin}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::post("/revoke")
        .header(http::header::HOST, admin.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!(
            "admin port answered {status}: {}",
            String::from_utf8_lossy(&bytes).trim()
        ));
    }
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["seq"].as_u64())
        .ok_or_else(|| "unexpected answer from the admin port".to_owned())
}

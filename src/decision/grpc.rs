//! Envoy / Istio `ext_authz` over gRPC (`envoy.service.auth.v3.Authorization/Check`).
//! An allow is `OK` with an `OkHttpResponse` that overwrites the identity
//! headers the claims set and removes the others; a denial carries the
//! proxy's own status, `WWW-Authenticate` and body in a `DeniedHttpResponse`.

use std::sync::Arc;
use std::time::Instant;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use http::StatusCode;
use http_body_util::BodyExt;

use super::original::{FrontDoor, from_attributes};
use super::{Decider, Verdict, answer};
use crate::proxy::request::BadRequest;
use crate::proxy::respond::{Rejection, respond};

/// The `Authorization` service over the shared decision.
pub(super) struct GrpcCheck(pub(super) Arc<Decider>);

/// google.rpc.Code values Envoy reads.
const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

#[tonic::async_trait]
impl Authorization for GrpcCheck {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let started = Instant::now();
        let decider = &self.0;
        let snapshot = decider.proxy.snapshot();
        let check = request.into_inner();
        let original = match check
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
        {
            None => Err(BadRequest::NoOriginalRequest("no HTTP attributes in the check request")),
            Some(http) => {
                // Raw headers (`encode_raw_headers: true`) keep repeated
                // names apart; the map joins them.
                let raw = http.header_map.as_ref().map(|m| &m.headers);
                match raw {
                    Some(raw) if !raw.is_empty() => from_attributes(
                        &http.method,
                        &http.path,
                        &http.host,
                        raw.iter().map(|h| (h.key.as_str(), h.raw_value.as_slice())),
                    ),
                    _ => from_attributes(
                        &http.method,
                        &http.path,
                        &http.host,
                        http.headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())),
                    ),
                }
            }
        };
        let verdict = decider.judge(&snapshot, original).await;
        decider.record(FrontDoor::EnvoyGrpc, &verdict, started);
        let response = match verdict {
            Verdict::Allow(claims) => {
                let (set, unset) = answer::identity(snapshot.identity(), claims.as_deref());
                let headers = overwrite(&set);
                CheckResponse {
                    status: Some(status(OK, "")),
                    http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                        headers,
                        headers_to_remove: unset.iter().map(|n| n.as_str().to_owned()).collect(),
                        ..OkHttpResponse::default()
                    })),
                    dynamic_metadata: None,
                }
            }
            Verdict::Deny(rejection) => denied(&rejection, snapshot.realm()).await,
            Verdict::SessionEndpoint => denied_plain(StatusCode::NOT_FOUND, super::SESSION_ENDPOINT_BODY),
        };
        Ok(tonic::Response::new(response))
    }
}

/// Each header as an option that replaces any header of that name.
fn overwrite(headers: &http::HeaderMap) -> Vec<HeaderValueOption> {
    headers
        .iter()
        .map(|(name, value)| HeaderValueOption {
            header: Some(HeaderValue {
                key: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
                raw_value: Vec::new(),
            }),
            append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
            ..HeaderValueOption::default()
        })
        .collect()
}

fn status(code: i32, message: &str) -> rpc::Status {
    rpc::Status {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    }
}

async fn denied(rejection: &Rejection, realm: &str) -> CheckResponse {
    let response = respond(rejection, realm);
    let code = match response.status() {
        StatusCode::UNAUTHORIZED => UNAUTHENTICATED,
        StatusCode::FORBIDDEN => PERMISSION_DENIED,
        StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE,
        _ => INVALID_ARGUMENT,
    };
    let http_status = response.status().as_u16();
    let headers = overwrite(response.headers());
    let body = match response.into_body().collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(never) => match never {},
    };
    CheckResponse {
        status: Some(status(code, &rejection.to_string())),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(http_status),
            }),
            headers,
            body,
        })),
        dynamic_metadata: None,
    }
}

fn denied_plain(status_code: StatusCode, body: &str) -> CheckResponse {
    CheckResponse {
        status: Some(status(INVALID_ARGUMENT, body)),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status_code.as_u16()),
            }),
            headers: Vec::new(),
            body: body.to_owned(),
        })),
        dynamic_metadata: None,
    }
}

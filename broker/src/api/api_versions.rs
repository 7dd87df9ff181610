//! ApiVersions (key 18): the API keys and version ranges this broker serves.

use super::{ready, Ctx, Deferred, Reply};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use protocol::kafka::{encode_response_frame, RequestPrefix, ResponseError, SUPPORTED_APIS};

fn response(error: ResponseError) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = error.code();
    r.api_keys = SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key as i16;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect();
    r
}

pub async fn handle(ctx: Ctx, _req: ApiVersionsRequest) -> Deferred {
    let mut r = response(ResponseError::UnsupportedVersion);
    r.error_code = 0;
    ready(ctx.reply(&r))
}

pub fn error_response(_req: &ApiVersionsRequest, error: ResponseError) -> ApiVersionsResponse {
    response(error)
}

/// A client asked with a version this broker does not know: answer v0 with
/// UNSUPPORTED_VERSION and the supported ranges, as Kafka does, so it can retry.
pub fn unsupported(prefix: RequestPrefix) -> Reply {
    let r = response(ResponseError::UnsupportedVersion);
    match encode_response_frame(ApiKey::ApiVersions, 0, prefix.correlation_id, &r) {
        Ok(f) => Reply::Frame(f),
        Err(_) => Reply::Close,
    }
}

//! The browser upload page (`--upload-page`): plain HTML, CSS and JS embedded in the
//! binary, using the public API with a key the user pastes.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::http::state::AppState;

const INDEX: &str = include_str!("../../../ui/index.html");
const APP_JS: &str = include_str!("../../../ui/app.js");
const APP_CSS: &str = include_str!("../../../ui/app.css");

/// The origin (`scheme://host:port`) of a URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

/// `GET /`.
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let s3 = &state.settings.storage;
    // The page may talk to filegate and PUT/GET to the bucket's public endpoint, nothing else.
    let bucket = s3
        .s3_public_endpoint
        .as_deref()
        .or(s3.s3_endpoint.as_deref())
        .and_then(origin)
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' {bucket}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(INDEX)
}

/// `GET /ui/app.js`.
pub async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(APP_JS)
}

/// `GET /ui/app.css`.
pub async fn app_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(APP_CSS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            super::origin("http://127.0.0.1:3900/bucket/key").as_deref(),
            Some("http://127.0.0.1:3900")
        );
        assert_eq!(
            super::origin("https://s3.example.com").as_deref(),
            Some("https://s3.example.com")
        );
        assert_eq!(super::origin("nonsense"), None);
    }
}

//! The loopback endpoint that serves a turn's inbound media to agents that
//! cannot read the bridge's files (a webhook receiver in a container, a
//! command running as another user).
//!
//! While a turn is in progress, each of its downloaded media files is
//! served at the URL in [`TurnMedia::url`](crate::TurnMedia::url):
//!
//! ```text
//! GET http://127.0.0.1:9466/media/<name>
//! Authorization: Bearer <media token>
//! ```
//!
//! The answer is the decrypted file with its content type. A request
//! without the right token gets 401, an unknown or withdrawn name 404. The
//! file stops being served, and is removed, once its turn is settled; the
//! local path in [`TurnMedia::path`](crate::TurnMedia::path) stays
//! alongside for agents on this machine.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;

use crate::error::{Error, Kind};
use crate::secret::Secret;
use crate::server::LoopbackServer;

/// What is served under one name.
#[derive(Clone)]
struct Published {
    path: PathBuf,
    content_type: Option<String>,
}

type Files = Arc<Mutex<HashMap<String, Published>>>;

/// The media endpoint; see the [module docs](self).
pub struct MediaEndpoint {
    server: LoopbackServer,
    files: Files,
}

impl fmt::Debug for MediaEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaEndpoint")
            .field("addr", &self.server.local_addr())
            .field(
                "served",
                &self.files.lock().map(|files| files.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

impl MediaEndpoint {
    /// Serves the endpoint on `addr` (a loopback address; port 0 picks a
    /// free one), answering requests that carry `token` (at least 16
    /// characters).
    pub async fn serve(addr: SocketAddr, token: Secret) -> Result<Self, Error> {
        if token.expose_secret().len() < 16 {
            return Err(Error::new(
                Kind::Config,
                "the media endpoint's token must be at least 16 characters",
            ));
        }
        let token = Arc::new(token);
        let files: Files = Arc::default();
        let served = files.clone();
        let server = LoopbackServer::bind(addr, move |req| {
            let token = token.clone();
            let files = served.clone();
            async move { handle(req, &token, &files).await }
        })
        .await?;
        Ok(Self { server, files })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The URL of a file named `name`.
    fn url_of(&self, name: &str) -> String {
        format!("http://{}/media/{name}", self.local_addr())
    }

    /// Serves the file at `path` under its file name; returns its URL.
    pub(crate) fn publish(&self, path: &Path, content_type: Option<&str>) -> Option<String> {
        let name = path.file_name()?.to_str()?.to_owned();
        let mut files = self.files.lock().ok()?;
        files.insert(
            name.clone(),
            Published {
                path: path.to_path_buf(),
                content_type: content_type.map(str::to_owned),
            },
        );
        Some(self.url_of(&name))
    }

    /// Stops serving the file at `path`.
    pub(crate) fn withdraw(&self, path: &Path) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        if let Ok(mut files) = self.files.lock() {
            files.remove(name);
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *resp.status_mut() = status;
    resp
}

async fn handle(req: Request<Bytes>, token: &Secret, files: &Files) -> Response<Full<Bytes>> {
    let Some(name) = req.uri().path().strip_prefix("/media/") else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if req.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| token.matches(given));
    if !authorized {
        tracing::warn!("the media endpoint refused a request without the right token");
        return plain(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    let published = files.lock().ok().and_then(|f| f.get(name).cloned());
    let Some(published) = published else {
        return plain(StatusCode::NOT_FOUND, "no such media, or its turn is over");
    };
    match tokio::fs::read(&published.path).await {
        Ok(bytes) => {
            let mut resp = Response::new(Full::new(Bytes::from(bytes)));
            let content_type = published
                .content_type
                .as_deref()
                .and_then(|ct| http::HeaderValue::from_str(ct).ok())
                .unwrap_or(http::HeaderValue::from_static("application/octet-stream"));
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, content_type);
            resp
        }
        Err(err) => {
            tracing::warn!(error = %err, "a published media file cannot be read");
            plain(StatusCode::NOT_FOUND, "the media file is gone")
        }
    }
}

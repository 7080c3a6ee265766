//! URL fetches cannot be turned against the host: names that resolve to
//! internal addresses, internal IP literals and https→http redirects are
//! refused before any request is made.
//!
//! Nothing here touches the network: a test resolver maps names to
//! addresses, and the HTTP service is a recorder that answers every request
//! itself (a redirect from the one public name) and notes it, so a request
//! the code under test should not have made shows up in the record, not on
//! the wire.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use wxlink_media::guard::AddressClass;
use wxlink_media::{
    AddressPolicy, Error, FetchOptions, Resolver, UploadOptions, UploadSource, UploadUrlApi, upload,
};
use wxlink_proto::{GetUploadUrlRequest, GetUploadUrlResponse};
use wxlink_transport::{Body, BoxError};

/// Maps the test's names; any other name fails to resolve.
fn test_resolver() -> Resolver {
    Resolver::new(|host: &str, _port: u16| {
        let addr: &str = match host {
            "public.example" => "93.184.216.34",
            "loop.example" => "127.0.0.1",
            "ten.example" => "10.20.30.40",
            "metadata.example" => "169.254.169.254",
            "v6loop.example" => "::1",
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "unknown test name",
                ));
            }
        };
        Ok(vec![addr.parse::<IpAddr>().unwrap()])
    })
}

/// Records every request; `public.example` answers with a redirect to the
/// location in its `to` query parameter, everything else with 200.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn service(
        &self,
    ) -> impl tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = BoxError,
        Future = impl Future<Output = Result<Response<Body>, BoxError>> + Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        let seen = Arc::clone(&self.seen);
        tower::service_fn(move |req: Request<Body>| {
            let seen = Arc::clone(&seen);
            async move {
                let uri = req.uri().to_string();
                seen.lock().unwrap().push(uri.clone());
                let to = req
                    .uri()
                    .query()
                    .and_then(|q| q.strip_prefix("to="))
                    .map(percent_decode);
                let resp = match to {
                    Some(location) if req.uri().host() == Some("public.example") => {
                        Response::builder()
                            .status(302)
                            .header("location", location)
                            .body(Body::empty())
                    }
                    _ => Response::builder().status(200).body(Body::from("hello")),
                };
                Ok::<_, BoxError>(resp.unwrap())
            }
        })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn percent_decode(s: &str) -> String {
    String::from_utf8(
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
            .into_bytes(),
    )
    .unwrap()
}

/// A `getuploadurl` that counts its calls; it must never be reached when a
/// fetch is refused.
#[derive(Default)]
struct CountingApi(Mutex<u32>);

impl UploadUrlApi for CountingApi {
    fn get_upload_url(
        &self,
        _request: &GetUploadUrlRequest,
    ) -> impl Future<Output = Result<GetUploadUrlResponse, wxlink_transport::Error>> + Send {
        *self.0.lock().unwrap() += 1;
        async { Ok(GetUploadUrlResponse::default()) }
    }
}

fn options(policy: AddressPolicy) -> UploadOptions {
    let mut options = UploadOptions::with_cdn_base_url("http://cdn.invalid/c2c");
    options.fetch = FetchOptions::default()
        .policy(policy)
        .resolver(test_resolver());
    options
}

async fn fetch_err(url: &str, policy: AddressPolicy, recorder: &Recorder) -> Error {
    let api = CountingApi::default();
    let err = upload(
        &api,
        &recorder.service(),
        "someone@im.wechat",
        UploadSource::url(url),
        &options(policy),
    )
    .await
    .unwrap_err();
    assert_eq!(*api.0.lock().unwrap(), 0, "getuploadurl was called");
    err
}

fn redirect_to(location: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(location.as_bytes()).collect();
    format!("http://public.example/start?to={encoded}")
}

#[tokio::test]
async fn redirects_to_internal_names_are_refused_before_any_connection() {
    for (target, class) in [
        ("http://loop.example/x", AddressClass::Loopback),
        ("http://ten.example/x", AddressClass::Private),
        (
            "http://metadata.example/latest/meta-data/",
            AddressClass::Metadata,
        ),
        ("http://v6loop.example/x", AddressClass::Loopback),
    ] {
        let recorder = Recorder::default();
        let err = fetch_err(&redirect_to(target), AddressPolicy::PublicOnly, &recorder).await;
        assert!(
            err.blocked_address().is_some_and(|(_, c)| c == class),
            "{target}: {err:?}"
        );
        // Only the public first hop was requested; the refused hop never was.
        let seen = recorder.seen();
        assert_eq!(seen.len(), 1, "{target}: {seen:?}");
        assert!(seen[0].starts_with("http://public.example/"), "{seen:?}");
        assert!(
            err.to_string().contains(target.split('/').nth(2).unwrap()),
            "{err}"
        );
    }
}

#[tokio::test]
async fn internal_names_and_literals_are_refused_as_the_first_hop() {
    for url in [
        "http://loop.example/a.png",
        "http://ten.example/a.png",
        "http://metadata.example/",
        "http://127.0.0.1:8080/a",
        "http://0x7f.1/a",
        "http://[::1]/a",
        "http://[::ffff:10.0.0.1]/a",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.1.1/",
        "http://224.0.0.1/",
    ] {
        let recorder = Recorder::default();
        let err = fetch_err(url, AddressPolicy::PublicOnly, &recorder).await;
        assert!(err.is_blocked_address(), "{url}: {err:?}");
        assert!(recorder.seen().is_empty(), "{url}: {:?}", recorder.seen());
    }
}

#[tokio::test]
async fn an_https_page_redirecting_to_http_is_refused() {
    let recorder = Recorder::default();
    let encoded: String =
        url::form_urlencoded::byte_serialize(b"http://public.example/plain").collect();
    let err = fetch_err(
        &format!("https://public.example/start?to={encoded}"),
        AddressPolicy::PublicOnly,
        &recorder,
    )
    .await;
    assert!(
        err.is_insecure_redirect() && err.host() == Some("public.example"),
        "{err:?}"
    );
    assert_eq!(recorder.seen().len(), 1);
}

#[tokio::test]
async fn names_that_do_not_resolve_are_typed_errors() {
    let recorder = Recorder::default();
    let err = fetch_err(
        "http://nowhere.example/",
        AddressPolicy::PublicOnly,
        &recorder,
    )
    .await;
    assert!(err.is_resolve(), "{err:?}");
    assert!(recorder.seen().is_empty());
}

#[tokio::test]
async fn allowing_loopback_opens_loopback_only() {
    let recorder = Recorder::default();
    let err = fetch_err(
        &redirect_to("http://ten.example/x"),
        AddressPolicy::AllowLoopback,
        &recorder,
    )
    .await;
    assert!(err.is_blocked_address(), "{err:?}");
    assert_eq!(recorder.seen().len(), 1);

    // A loopback target is fetched (the recorder answers it), and the
    // upload goes on to getuploadurl.
    let recorder = Recorder::default();
    let api = CountingApi::default();
    let err = upload(
        &api,
        &recorder.service(),
        "someone@im.wechat",
        UploadSource::url(redirect_to("http://loop.example/x")),
        &options(AddressPolicy::AllowLoopback),
    )
    .await
    .unwrap_err();
    assert_eq!(recorder.seen().len(), 2, "{:?}", recorder.seen());
    assert_eq!(*api.0.lock().unwrap(), 1);
    // The fake getuploadurl returns no URL.
    assert!(err.is_no_upload_url(), "{err:?}");
}

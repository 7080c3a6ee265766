//! The simulated C2C CDN: upload slots issued by `getuploadurl`, streaming
//! verification of uploads (size, key, padding, plaintext size, MD5),
//! bounded storage and ciphertext downloads (ILINK.md §7, §11.8).
//!
//! Both the upload slots and the stored objects are indexes that grow with
//! every upload, so each keeps only its newest
//! [`SimConfig::cdn_object_limit`](crate::SimConfig::cdn_object_limit)
//! entries; forgetting an object releases its memory or deletes its
//! spilled file.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use md5::{Digest as _, Md5};
use percent_encoding::percent_decode_str;
use tokio::io::AsyncWriteExt as _;
use wxlink_media::{AesKey, Decryptor};

use crate::body::SimBody;
use crate::config::CdnStorage;
use crate::records::UploadRecord;
use crate::server::{Answer, status};
use crate::state::Shared;

pub(crate) use wxlink_proto::url::encode_uri_component as encode_component;

/// The value of query parameter `name`, percent-decoded. A `+` stays a
/// `+`: clients encode with `encodeURIComponent`, not as HTML forms, and a
/// base64 parameter may hold a literal `+`.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

/// An upload announced by `getuploadurl`.
#[derive(Debug, Clone)]
pub(crate) struct UploadSlot {
    pub(crate) filekey: String,
    pub(crate) key: AesKey,
    pub(crate) rawsize: u64,
    pub(crate) rawfilemd5: String,
    pub(crate) filesize: u64,
    pub(crate) media_type: i64,
    pub(crate) to_user_id: String,
}

/// Where one stored object's ciphertext lives.
#[derive(Debug, Clone)]
pub(crate) enum Stored {
    Memory(Bytes),
    Disk(PathBuf),
    DigestOnly,
}

/// A finished upload (or injected media), addressable by its download
/// parameter.
#[derive(Debug, Clone)]
pub(crate) struct StoredMedia {
    pub(crate) key: AesKey,
    pub(crate) filesize: u64,
    /// The user the media was uploaded for; `None` for injected media.
    pub(crate) to_user_id: Option<String>,
    pub(crate) data: Stored,
    /// Bytes of [`CdnState::memory_used`] this object accounts for (0 for
    /// injected media, which is not counted against the memory bound).
    pub(crate) reserved: u64,
}

/// The CDN's part of the simulator state.
pub(crate) struct CdnState {
    pub(crate) mode: CdnStorage,
    slots: HashMap<String, UploadSlot>,
    /// Slot parameters, oldest first, for dropping the oldest slot.
    slot_order: VecDeque<String>,
    media: HashMap<String, StoredMedia>,
    /// Download parameters, oldest first, for dropping the oldest object.
    media_order: VecDeque<String>,
    /// Most slots, and most stored objects, kept (at least 1).
    limit: usize,
    pub(crate) memory_used: u64,
    dir: Option<tempfile::TempDir>,
    files: u64,
}

impl CdnState {
    pub(crate) fn new(mode: CdnStorage, limit: usize) -> Self {
        Self {
            mode,
            slots: HashMap::new(),
            slot_order: VecDeque::new(),
            media: HashMap::new(),
            media_order: VecDeque::new(),
            limit: limit.max(1),
            memory_used: 0,
            dir: None,
            files: 0,
        }
    }

    /// The upload slot issued under `param`, if it is still kept.
    pub(crate) fn slot(&self, param: &str) -> Option<&UploadSlot> {
        self.slots.get(param)
    }

    /// The stored object downloadable under `param`, if it is still kept.
    pub(crate) fn media(&self, param: &str) -> Option<&StoredMedia> {
        self.media.get(param)
    }

    /// Issues an upload slot, forgetting the oldest one when the limit is
    /// reached.
    pub(crate) fn insert_slot(&mut self, param: String, slot: UploadSlot) {
        if self.slot_order.len() >= self.limit
            && let Some(oldest) = self.slot_order.pop_front()
        {
            self.slots.remove(&oldest);
        }
        self.slot_order.push_back(param.clone());
        self.slots.insert(param, slot);
    }

    /// Stores an object, forgetting the oldest one (its memory released,
    /// its spilled file deleted) when the limit is reached.
    pub(crate) fn insert_media(&mut self, param: String, media: StoredMedia) {
        if self.media_order.len() >= self.limit
            && let Some(oldest) = self.media_order.pop_front()
            && let Some(old) = self.media.remove(&oldest)
        {
            self.release(&old);
        }
        self.media_order.push_back(param.clone());
        self.media.insert(param, media);
    }

    /// Gives back what a forgotten object held: its share of the memory
    /// bound, or its spilled file. A download still streaming the file
    /// keeps reading it through its open handle.
    fn release(&mut self, media: &StoredMedia) {
        self.memory_used = self.memory_used.saturating_sub(media.reserved);
        if let Stored::Disk(path) = &media.data {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Forgets every slot and stored object (spilled files are deleted).
    pub(crate) fn clear(&mut self) {
        for media in self.media.values() {
            if let Stored::Disk(path) = &media.data {
                let _ = std::fs::remove_file(path);
            }
        }
        self.slots.clear();
        self.slot_order.clear();
        self.media.clear();
        self.media_order.clear();
        self.memory_used = 0;
    }

    /// A fresh path in the spill directory, creating the directory first.
    fn spill_path(&mut self) -> std::io::Result<PathBuf> {
        if self.dir.is_none() {
            self.dir = Some(
                tempfile::Builder::new()
                    .prefix("wxlink-sim-cdn")
                    .tempdir()?,
            );
        }
        self.files += 1;
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no spill directory"))?;
        Ok(dir.path().join(format!("{}.bin", self.files)))
    }

    /// The directory spilled uploads go to, once one has been spilled.
    pub(crate) fn spill_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().to_path_buf())
    }
}

/// Where an upload in progress writes its ciphertext.
enum Sink {
    Memory(Vec<u8>),
    Disk(PathBuf, tokio::io::BufWriter<tokio::fs::File>),
    Digest,
}

/// A 4xx answer carrying `x-error-message`, as the real CDN does.
fn cdn_error(code: StatusCode, message: &str) -> Response<SimBody> {
    let mut resp = status(code, message);
    if let Ok(v) = HeaderValue::from_str(message) {
        resp.headers_mut().insert("x-error-message", v);
    }
    resp
}

/// `POST <cdn>/upload?encrypted_query_param=…&filekey=…`: streams the body
/// through the decryptor and MD5, never holding more than the storage
/// policy allows. Returns the answer and the bytes read.
pub(crate) async fn upload(
    shared: &Arc<Shared>,
    query: Option<&str>,
    headers: &http::HeaderMap,
    mut body: Incoming,
) -> (Answer, u64) {
    let param = query_param(query, "encrypted_query_param").unwrap_or_default();
    let filekey = query_param(query, "filekey");
    let slot = shared.state().cdn.slot(&param).cloned();
    let Some(slot) = slot else {
        let msg = "invalid encrypted_query_param";
        return (
            Answer::refused(cdn_error(StatusCode::BAD_REQUEST, msg), msg),
            0,
        );
    };
    let mut record = UploadRecord {
        at: SystemTime::now(),
        filekey: slot.filekey.clone(),
        media_type: slot.media_type,
        to_user_id: slot.to_user_id.clone(),
        rawsize: slot.rawsize,
        filesize: slot.filesize,
        received: 0,
        download_param: None,
        error: None,
        stored: None,
    };
    let refuse = |shared: &Arc<Shared>, mut record: UploadRecord, msg: &str, received: u64| {
        record.received = received;
        record.error = Some(msg.to_owned());
        record.at = SystemTime::now();
        shared.state().uploads.push(record);
        shared.touch();
        (
            Answer::refused(cdn_error(StatusCode::BAD_REQUEST, msg), msg.to_owned()),
            received,
        )
    };
    if filekey.as_deref().is_some_and(|k| k != slot.filekey) {
        let size = drain_rest(&mut body).await;
        return refuse(shared, record, "filekey mismatch", size);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n != slot.filesize) {
        let size = drain_rest(&mut body).await;
        return refuse(shared, record, "file size mismatch", size);
    }

    // Choose where the ciphertext goes, reserving memory up front.
    enum Choice {
        Memory,
        Disk(std::io::Result<PathBuf>),
        Digest,
    }
    let choice = {
        let mut st = shared.state();
        match st.cdn.mode {
            CdnStorage::DigestOnly => Choice::Digest,
            CdnStorage::Spill { memory_limit } => {
                if st.cdn.memory_used + slot.filesize <= memory_limit {
                    st.cdn.memory_used += slot.filesize;
                    Choice::Memory
                } else {
                    Choice::Disk(st.cdn.spill_path())
                }
            }
        }
    };
    let mut sink = match choice {
        Choice::Digest => Sink::Digest,
        Choice::Memory => Sink::Memory(Vec::with_capacity(
            usize::try_from(slot.filesize).unwrap_or(0),
        )),
        Choice::Disk(Ok(path)) => match tokio::fs::File::create(&path).await {
            Ok(f) => Sink::Disk(path, tokio::io::BufWriter::new(f)),
            Err(_) => {
                let size = drain_rest(&mut body).await;
                return refuse(shared, record, "cdn storage unavailable", size);
            }
        },
        Choice::Disk(Err(_)) => {
            let size = drain_rest(&mut body).await;
            return refuse(shared, record, "cdn storage unavailable", size);
        }
    };

    let mut decryptor = Decryptor::new(&slot.key);
    let mut md5 = Md5::new();
    let mut plain = Vec::with_capacity(64 * 1024);
    let mut received = 0u64;
    let mut plain_len = 0u64;
    let mut failure: Option<&str> = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            failure = Some("upload interrupted");
            break;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > slot.filesize {
            failure = Some("file size mismatch");
            break;
        }
        decryptor.update(&data, &mut plain);
        md5.update(&plain);
        plain_len += plain.len() as u64;
        plain.clear();
        let written = match &mut sink {
            Sink::Memory(buf) => {
                buf.extend_from_slice(&data);
                true
            }
            Sink::Disk(_, file) => file.write_all(&data).await.is_ok(),
            Sink::Digest => true,
        };
        if !written {
            failure = Some("cdn storage unavailable");
            break;
        }
    }
    if failure.is_some() {
        // Read what the client is still sending, so it gets to read the 4xx
        // instead of a reset while it writes.
        received += drain_rest(&mut body).await;
    }
    if failure.is_none() && received != slot.filesize {
        failure = Some("file size mismatch");
    }
    if failure.is_none() {
        match decryptor.finish() {
            Ok(tail) => {
                md5.update(&tail);
                plain_len += tail.len() as u64;
                if plain_len != slot.rawsize {
                    failure = Some("raw size mismatch");
                } else if hex::encode(md5.finalize()) != slot.rawfilemd5 {
                    failure = Some("md5 mismatch");
                }
            }
            Err(_) => failure = Some("decrypt failed: wrong aes key or bad padding"),
        }
    }
    let data = match sink {
        Sink::Memory(buf) => {
            if failure.is_some() {
                let mut st = shared.state();
                st.cdn.memory_used = st.cdn.memory_used.saturating_sub(slot.filesize);
            }
            Stored::Memory(Bytes::from(buf))
        }
        Sink::Disk(path, mut file) => {
            if file.flush().await.is_err() && failure.is_none() {
                failure = Some("cdn storage unavailable");
            }
            if failure.is_some() {
                let _ = tokio::fs::remove_file(&path).await;
            }
            Stored::Disk(path)
        }
        Sink::Digest => Stored::DigestOnly,
    };
    if let Some(msg) = failure {
        return refuse(shared, record, msg, received);
    }
    let stored_in = match &data {
        Stored::Memory(_) => "memory",
        Stored::Disk(_) => "disk",
        Stored::DigestOnly => "digest",
    };
    let reserved = match data {
        Stored::Memory(_) => slot.filesize,
        Stored::Disk(_) | Stored::DigestOnly => 0,
    };
    let mut st = shared.state();
    let download = st.random_param(48);
    st.cdn.insert_media(
        download.clone(),
        StoredMedia {
            key: slot.key.clone(),
            filesize: slot.filesize,
            to_user_id: Some(slot.to_user_id.clone()),
            data,
            reserved,
        },
    );
    record.at = SystemTime::now();
    record.received = received;
    record.download_param = Some(download.clone());
    record.stored = Some(stored_in);
    st.uploads.push(record);
    drop(st);
    shared.touch();
    let mut resp = Response::new(SimBody::empty());
    if let Ok(v) = HeaderValue::from_str(&download) {
        resp.headers_mut().insert("x-encrypted-param", v);
    }
    (Answer::ok(resp), received)
}

/// Reads and discards the rest of a request body; returns the bytes read.
async fn drain_rest(body: &mut Incoming) -> u64 {
    let mut n = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
        }
    }
    n
}

/// `GET <cdn>/download?encrypted_query_param=…`: streams the stored
/// ciphertext.
pub(crate) async fn download(shared: &Arc<Shared>, query: Option<&str>) -> Answer {
    let param = query_param(query, "encrypted_query_param").unwrap_or_default();
    let media = shared.state().cdn.media(&param).cloned();
    let Some(media) = media else {
        let msg = "unknown encrypted_query_param";
        return Answer::refused(cdn_error(StatusCode::NOT_FOUND, msg), msg);
    };
    let body = match media.data {
        Stored::Memory(bytes) => SimBody::Bytes(bytes),
        Stored::Disk(path) => match tokio::fs::File::open(&path).await {
            Ok(file) => SimBody::file(file, media.filesize),
            Err(_) => {
                let msg = "stored media unreadable";
                return Answer::refused(cdn_error(StatusCode::INTERNAL_SERVER_ERROR, msg), msg);
            }
        },
        Stored::DigestOnly => {
            let msg = "media not retained (digest-only storage)";
            return Answer::refused(cdn_error(StatusCode::NOT_FOUND, msg), msg);
        }
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(media.filesize));
    Answer::ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_round_trip_through_component_encoding() {
        let raw = "a+b/c=d&e f";
        let q = format!("x=1&encrypted_query_param={}", encode_component(raw));
        assert_eq!(
            query_param(Some(&q), "encrypted_query_param").as_deref(),
            Some(raw)
        );
        assert_eq!(query_param(Some(&q), "missing"), None);
    }
}

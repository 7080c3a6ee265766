//! The simulated C2C CDN's HTTP side: streaming verification of uploads
//! (size, key, padding, plaintext size, MD5) into the bounded `storage`,
//! and ciphertext downloads (see `docs/protocol.md`, `getuploadurl`, and
//! the media sections of the protocol notes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use md5::{Digest as _, Md5};
use tokio::io::AsyncWriteExt as _;
use wxlink_media::Decryptor;

use crate::body::SimBody;
use crate::config::CdnStorage;
use crate::http::{Answer, RequestBody, cdn_error, drain, query_param};
use crate::records::UploadRecord;
use crate::state::Shared;
use crate::storage::{Stored, StoredMedia};

/// The bot id of the account that issued a slot, or an empty string.
fn slot_bot_id(shared: &Shared, account: Option<u32>) -> String {
    account
        .and_then(|id| shared.state().bot(id).map(|b| b.bot_id.clone()))
        .unwrap_or_default()
}

/// Where an upload in progress writes its ciphertext.
enum Sink {
    Memory(Vec<u8>),
    Disk(PathBuf, tokio::io::BufWriter<tokio::fs::File>),
    Digest,
}

/// `POST <cdn>/upload?encrypted_query_param=…&filekey=…`: streams the body
/// through the decryptor and MD5, never holding more than the storage
/// policy allows. Returns the answer and the bytes read.
pub(crate) async fn upload(
    shared: &Arc<Shared>,
    query: Option<&str>,
    headers: &http::HeaderMap,
    mut body: RequestBody,
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
        bot_id: slot_bot_id(shared, slot.account),
        to_user_id: slot.to_user_id.clone(),
        rawsize: slot.rawsize,
        filesize: slot.filesize,
        received: 0,
        download_param: None,
        error: None,
        stored: None,
    };
    let slot_account = slot.account;
    let refuse = |shared: &Arc<Shared>, mut record: UploadRecord, msg: &str, received: u64| {
        record.received = received;
        record.error = Some(msg.to_owned());
        record.at = SystemTime::now();
        shared.state().log_upload(slot_account, record);
        shared.touch();
        (
            Answer::refused(cdn_error(StatusCode::BAD_REQUEST, msg), msg.to_owned()),
            received,
        )
    };
    if filekey.as_deref().is_some_and(|k| k != slot.filekey) {
        let size = drain(&mut body).await;
        return refuse(shared, record, "filekey mismatch", size);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n != slot.filesize) {
        let size = drain(&mut body).await;
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
                if st.cdn.memory_used.saturating_add(slot.filesize) <= memory_limit {
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
                let size = drain(&mut body).await;
                return refuse(shared, record, "cdn storage unavailable", size);
            }
        },
        Choice::Disk(Err(_)) => {
            let size = drain(&mut body).await;
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
        received += drain(&mut body).await;
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
    st.log_upload(slot.account, record);
    drop(st);
    shared.touch();
    let mut resp = Response::new(SimBody::empty());
    if let Ok(v) = HeaderValue::from_str(&download) {
        resp.headers_mut().insert("x-encrypted-param", v);
    }
    (Answer::ok(resp), received)
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

//! The simulated CDN's storage: upload slots issued by `getuploadurl` and
//! stored objects (uploads and injected media), each index bounded by
//! [`SimConfig::cdn_object_limit`](crate::SimConfig::cdn_object_limit);
//! forgetting an object releases its memory or deletes its spilled file.
//! The HTTP side lives in `cdn`.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;

use bytes::Bytes;
use wxlink_media::AesKey;

use crate::config::CdnStorage;

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
    /// The account whose `getuploadurl` issued the slot.
    pub(crate) account: Option<u32>,
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
    pub(crate) fn spill_path(&mut self) -> std::io::Result<PathBuf> {
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

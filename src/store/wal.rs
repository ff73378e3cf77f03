//! The commit log in front of sled: an append-only file (`<data_dir>/commit.log`) that the
//! [`super::writer`] writes every batch to with one `write(2)`, and `fdatasync`s when the
//! batch holds something to confirm, so sled itself is flushed only at checkpoints (every
//! `store.checkpoint_ms`), never per batch.
//!
//! Layout: a 16-byte header (magic, then the current generation as u64 LE), then frames
//! `[len u32][crc32 u32][generation u64][payload: len bytes]`, the CRC over the generation
//! and the payload. A checkpoint (sled flushed) starts a new generation: the header is
//! rewritten and frames are overwritten in place from the start, so frames left from an
//! older generation after the new ones are never replayed. The file grows by whole
//! preallocated chunks to its high-water mark and stays there: an `fdatasync` then has data
//! only to write, no size change to journal.
//!
//! Reading ([`read`]) keeps the frames of the header's generation up to the first one that
//! is not whole and valid (a torn or corrupt tail ends the replay there); what they mean is
//! [`entry`]'s business.

pub mod entry;

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The file's name under the data directory.
pub const FILE_NAME: &str = "commit.log";
const MAGIC: &[u8; 8] = b"SASWAL1\0";
const HEADER: u64 = 16;
/// `len`, `crc`, `generation`.
const FRAME_HEAD: usize = 16;
/// The file grows by this much at a time (preallocated).
const CHUNK: u64 = 1024 * 1024;

/// What [`read`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The header's generation (0: no log, or no valid header).
    pub generation: u64,
    /// The payloads of that generation's frames, in order.
    pub frames: Vec<Vec<u8>>,
    /// The replay stopped at a torn or corrupt frame (not at a clean end).
    pub torn: bool,
}

/// Reads the log at `path` (none: nothing to replay).
pub fn read(path: &Path) -> io::Result<Replay> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => file.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replay::default()),
        Err(e) => return Err(e),
    };
    Ok(parse(&bytes))
}

fn parse(bytes: &[u8]) -> Replay {
    let Some(generation) = header_generation(bytes) else {
        return Replay::default();
    };
    let mut replay = Replay {
        generation,
        ..Replay::default()
    };
    let mut at = HEADER as usize;
    while let Some(head) = bytes.get(at..at + FRAME_HEAD) {
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        let frame_generation = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        if len == 0 || frame_generation != generation {
            // Preallocated zeros, or an older generation's frames: the clean end.
            return replay;
        }
        let Some(payload) = bytes.get(at + FRAME_HEAD..at + FRAME_HEAD + len) else {
            replay.torn = true;
            return replay;
        };
        if checksum(generation, payload) != crc {
            replay.torn = true;
            return replay;
        }
        replay.frames.push(payload.to_vec());
        at += FRAME_HEAD + len;
    }
    replay
}

fn header_generation(bytes: &[u8]) -> Option<u64> {
    let header = bytes.get(..HEADER as usize)?;
    (&header[..8] == MAGIC).then(|| u64::from_le_bytes(header[8..].try_into().expect("8 bytes")))
}

fn checksum(generation: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&generation.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// The writing side (the store writer's alone).
#[derive(Debug)]
pub struct CommitLog {
    file: File,
    generation: u64,
    /// Where the next frame goes.
    end: u64,
    /// Bytes allocated (the file's size).
    allocated: u64,
    /// Largest size before [`CommitLog::append`] refuses (a checkpoint is due).
    limit: u64,
    /// Reused frame buffer.
    frame: Vec<u8>,
}

impl CommitLog {
    /// Opens (or creates) the log at `path` and starts a new generation after the one in
    /// its header: call it only once every earlier frame is in sled and flushed.
    pub fn open(path: &Path, limit: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut header = [0u8; HEADER as usize];
        let found = file
            .read_exact_at(&mut header, 0)
            .ok()
            .and_then(|()| header_generation(&header));
        let allocated = file.metadata()?.len();
        let mut log = Self {
            file,
            generation: found.unwrap_or(0),
            end: HEADER,
            allocated,
            limit: limit.max(CHUNK),
            frame: Vec::new(),
        };
        log.reset()?;
        if found.is_none()
            && let Some(dir) = path.parent()
        {
            // A new file: its directory entry must survive a power loss too.
            File::open(dir)?.sync_all()?;
        }
        Ok(log)
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// No frame since the last reset.
    pub fn is_empty(&self) -> bool {
        self.end == HEADER
    }

    /// Bytes of frames written since the last reset.
    pub fn written(&self) -> u64 {
        self.end - HEADER
    }

    /// Appends one frame (one `write(2)`, not synced). `false`: it would pass the size
    /// limit, nothing written (checkpoint instead).
    pub fn append(&mut self, payload: &[u8]) -> io::Result<bool> {
        let len = u32::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame over 4 GiB"))?;
        let size = (FRAME_HEAD + payload.len()) as u64;
        if self.end + size > self.limit {
            return Ok(false);
        }
        if self.end + size > self.allocated {
            let grown = (self.end + size).div_ceil(CHUNK) * CHUNK;
            let (offset, len) = (self.allocated as i64, (grown - self.allocated) as i64);
            nix::fcntl::fallocate(&self.file, nix::fcntl::FallocateFlags::empty(), offset, len)
                .map_err(io::Error::from)?;
            self.allocated = grown;
        }
        self.frame.clear();
        self.frame.extend_from_slice(&len.to_le_bytes());
        self.frame
            .extend_from_slice(&checksum(self.generation, payload).to_le_bytes());
        self.frame.extend_from_slice(&self.generation.to_le_bytes());
        self.frame.extend_from_slice(payload);
        // Past the end lie zeros or older generations' frames: the replay stops there.
        self.file.write_all_at(&self.frame, self.end)?;
        self.end += size;
        Ok(true)
    }

    /// Waits until every frame appended is on disk (`fdatasync`).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Starts a new generation (after a checkpoint: every frame is in sled, flushed).
    /// Not synced: until the next [`CommitLog::sync`] a power loss may leave the older
    /// header, whose frames replay idempotently.
    pub fn reset(&mut self) -> io::Result<()> {
        self.generation += 1;
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&self.generation.to_le_bytes());
        self.file.write_all_at(&header, 0)?;
        self.allocated = self.allocated.max(HEADER);
        self.end = HEADER;
        Ok(())
    }
}

#[cfg(test)]
mod tests;

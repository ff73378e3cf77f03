//! Call recording: one two-channel G.711 WAV per call, from answer to end, in the law the
//! caller's leg uses (its audio kept as it came). Channel 0 is the caller, channel 1 the
//! plateau side (whatever the caller hears: prompts or the seat).
//!
//! A recording is evidence, so it follows the wall clock: it lasts from the answer to the
//! end of the call (to the sample, on the media task's clock), each packet sits where its
//! RTP timestamp puts it ([`jitter`]: a small jitter buffer per direction, so a burst after
//! a network stall, reordering or duplicates change nothing), and wherever nothing came
//! (a quiet line, VAD, a stall longer than the buffer) the file holds silence.
//!
//! [`StereoMixer`] (sans-IO) lines the two directions up and writes a frame out once both
//! directions came there, at the latest [`JITTER_DEPTH`] behind the clock (a gap waits that
//! long for its packet); [`RecordingWriter`] writes the WAV and describes it
//! ([`RecordingInfo`]: path, duration, size, SHA-256) for the call record; [`Recorder`] is
//! both, fed by the call's media session with each packet and a tick. Where files go and
//! who reads them is `store::recordings`.

mod salvage;
mod writer;

pub use salvage::salvage;
pub use sas_core::media::recording::*;
pub use writer::{
    RecordingWriter, SAMPLE_RATE, VerifyError, WavFormat, header, sync_file_and_dir, verify,
};

use crate::media::g711::G711Law;
use crate::media::session::{FinishedRecording, RecordSink, Tap};
use crate::time::EpochMillis;
use std::path::{Component, Path, PathBuf};

/// `root/relative`, provided `relative` only names plain components below `root`.
pub fn resolve(root: &Path, relative: &str) -> Result<PathBuf, RecordingError> {
    let rel = Path::new(relative);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    if relative.is_empty() || !plain {
        return Err(RecordingError::UnsafePath(relative.to_string()));
    }
    Ok(root.join(rel))
}

/// Sample position of `now` in a recording that started at `start` (8 samples per ms).
pub fn position(start: EpochMillis, now: EpochMillis) -> u64 {
    now.saturating_sub(start)
        .saturating_mul(SAMPLE_RATE as u64 / 1000)
}

/// The law of a recording whose file is opened before any audio came: France's.
const DEFAULT_LAW: G711Law = G711Law::Alaw;

/// Silence written at once at most when a recording's file is opened late (10 s): a call
/// where nothing is heard gets its file after this long anyway, so a crash leaves it.
const MAX_DEFERRED_SILENCE: u64 = 10 * SAMPLE_RATE as u64;

/// Samples of drained frames the recorder keeps room for between flushes (what both
/// directions bring in a few packets).
const FRAMES_KEPT: usize = 2 * 512;

/// One call's recording: mixer and file together, on positions counted in samples from the
/// answer. Call [`Recorder::flush`] often (with each packet and on a timer): frames are
/// written once final, and a track holds at most a few seconds.
///
/// The file is created with the first audio, not at the answer: until a packet comes, the
/// final frames are all silence and only counted, then written in front of the first
/// audio. A call where nothing is ever heard still gets its file of silence, at its end
/// (or after [`MAX_DEFERRED_SILENCE`]): the recording always lasts as long as the call.
/// Creating files off the answer path keeps a directory walk, a file creation and its
/// header out of call set-up (and out of short calls' media task).
pub struct Recorder {
    mixer: StereoMixer,
    file: File,
    /// The latest position seen: where the recording ends if no end is given.
    latest: u64,
    /// A packet has come on either channel (the file is due).
    heard: bool,
    /// Reused: the frames drained at once.
    frames: Vec<u8>,
    /// Samples that reached the router but never this recording (the kernel path's tap
    /// overflowed): counted with the unplaced ones, the recording is incomplete.
    lost: u64,
}

/// A recording's file, opened with the first audio.
enum File {
    /// Not yet: `silence` final frames (all silent, nothing having come) to write first.
    Deferred {
        root: PathBuf,
        relative: String,
        silence: u64,
    },
    Open(RecordingWriter),
}

impl File {
    /// Writes `frames` (interleaved), opening the file first unless they are the silence
    /// before any audio (`heard`: a packet has come). The file takes `mixer`'s law: its
    /// first packet's, or [`DEFAULT_LAW`] from then on if none came yet.
    fn write(
        &mut self,
        frames: &[u8],
        heard: bool,
        mixer: &mut StereoMixer,
    ) -> Result<(), RecordingError> {
        if let File::Deferred {
            root,
            relative,
            silence,
        } = self
        {
            let n = (frames.len() / 2) as u64;
            if !heard && *silence + n <= MAX_DEFERRED_SILENCE {
                *silence += n;
                return Ok(());
            }
            let law = mixer.settle(DEFAULT_LAW);
            let mut writer = RecordingWriter::create(root, relative, law)?;
            writer.write_silence(*silence)?;
            *self = File::Open(writer);
        }
        match self {
            File::Open(writer) => writer.write(frames),
            File::Deferred { .. } => Ok(()),
        }
    }

    /// Opens the file if it is not yet (nothing was heard), and hands it over.
    fn into_writer(self, mixer: &mut StereoMixer) -> Result<RecordingWriter, RecordingError> {
        match self {
            File::Open(writer) => Ok(writer),
            File::Deferred {
                root,
                relative,
                silence,
            } => {
                let law = mixer.settle(DEFAULT_LAW);
                let mut writer = RecordingWriter::create(&root, &relative, law)?;
                writer.write_silence(silence)?;
                Ok(writer)
            }
        }
    }
}

impl Recorder {
    /// A recording at `root/relative` (see [`RecordingWriter::create`]); only the path is
    /// checked now, the file is created with the first audio (see the type's doc).
    pub fn create(root: &Path, relative: &str) -> Result<Self, RecordingError> {
        resolve(root, relative)?;
        Ok(Self {
            mixer: StereoMixer::new(),
            file: File::Deferred {
                root: root.to_path_buf(),
                relative: relative.to_string(),
                silence: 0,
            },
            latest: 0,
            heard: false,
            frames: Vec::new(),
            lost: 0,
        })
    }

    /// Whether the file exists yet (it is created with the first audio).
    pub fn file_created(&self) -> bool {
        matches!(self.file, File::Open(_))
    }

    /// Adds a G.711 RTP payload of `channel` with header `rtp`, arrived at `at`.
    pub fn push_g711(
        &mut self,
        channel: Channel,
        at: u64,
        rtp: RtpMeta,
        payload: &[u8],
        law: G711Law,
    ) {
        self.latest = self.latest.max(at);
        self.heard = true;
        self.mixer.push_g711(channel, at, rtp, payload, law);
    }

    /// Writes the frames final at sample position `now`.
    pub fn flush(&mut self, now: u64) -> Result<(), RecordingError> {
        self.latest = self.latest.max(now);
        loop {
            self.frames.clear();
            let more = self.mixer.drain(now, &mut self.frames);
            self.file.write(&self.frames, self.heard, &mut self.mixer)?;
            if !more {
                // A gap filled at last hands out up to a second at once: not kept.
                self.frames.shrink_to(FRAMES_KEPT);
                return Ok(());
            }
        }
    }

    /// Ends the recording at position `end` (the call's end; `None`: the latest position
    /// seen): writes everything up to there, silence where nothing came, and closes the
    /// file (hashed; synced later, with its call record: see [`RecordingWriter`]).
    pub fn finish(mut self, end: Option<u64>) -> Result<FinishedRecording, RecordingError> {
        let end = end.unwrap_or(self.latest);
        loop {
            self.frames.clear();
            let more = self.mixer.finish(end, &mut self.frames);
            self.file.write(&self.frames, self.heard, &mut self.mixer)?;
            if !more {
                break;
            }
        }
        let mut unplaced = self.lost;
        if self.lost > 0 {
            tracing::warn!(
                samples = self.lost,
                "recording incomplete: audio the kernel path could not hand over"
            );
        }
        for channel in [Channel::Caller, Channel::Plateau] {
            let s = self.mixer.stats(channel);
            unplaced += s.late + s.overflow;
            if s.late + s.overflow > 0 || s.resyncs > 0 {
                tracing::info!(
                    ?channel,
                    late = s.late,
                    overflow = s.overflow,
                    resyncs = s.resyncs,
                    "recording: samples that came too late to be placed"
                );
            }
        }
        let mut finished = self.file.into_writer(&mut self.mixer)?.finish()?;
        finished.info.unplaced_ms = unplaced * 1000 / u64::from(SAMPLE_RATE);
        Ok(finished)
    }

    /// Bytes of buffers this recording holds: its memory, but for a few fixed fields.
    pub fn buffer_bytes(&self) -> usize {
        let file = match &self.file {
            File::Open(writer) => writer.buffer_bytes(),
            File::Deferred { .. } => 0,
        };
        self.mixer.buffer_bytes() + self.frames.capacity() + file
    }

    /// What became of `channel`'s audio so far.
    pub fn stats(&self, channel: Channel) -> TrackStats {
        self.mixer.stats(channel)
    }
}

/// A [`Recorder`] fed by a call's media session. The first write error stops the
/// recording (logged once, the call goes on); [`RecordSink::finish`] reports it.
pub struct CallRecorder {
    recorder: Recorder,
    end: Option<u64>,
    failed: Option<RecordingError>,
}

impl CallRecorder {
    pub fn new(recorder: Recorder) -> Self {
        Self {
            recorder,
            end: None,
            failed: None,
        }
    }

    fn tap(&mut self, channel: Channel, tap: Tap<'_>) {
        // What is final before this packet goes first: it keeps the buffer short even
        // after a long time without ticks.
        self.flush(tap.at);
        if self.failed.is_none() {
            self.recorder
                .push_g711(channel, tap.at, tap.rtp, tap.payload, tap.law);
        }
    }

    fn flush(&mut self, at: u64) {
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.recorder.flush(at) {
            tracing::error!(error = %e, "recording stopped");
            self.failed = Some(e);
        }
    }
}

impl RecordSink for CallRecorder {
    fn caller_audio(&mut self, tap: Tap<'_>) {
        self.tap(Channel::Caller, tap);
    }

    fn plateau_audio(&mut self, tap: Tap<'_>) {
        self.tap(Channel::Plateau, tap);
    }

    fn tick(&mut self, at: u64) {
        self.flush(at);
    }

    fn end(&mut self, at: u64) {
        self.end = Some(at);
    }

    fn lost(&mut self, samples: u64) {
        self.recorder.lost += samples;
    }

    fn finish(self: Box<Self>) -> Result<FinishedRecording, RecordingError> {
        match self.failed {
            Some(e) => Err(e),
            None => self.recorder.finish(self.end),
        }
    }
}

#[cfg(test)]
mod tests;

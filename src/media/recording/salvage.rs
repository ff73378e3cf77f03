//! Salvaging the recording of a call the router did not end (crash, `kill -9`): the WAV
//! header is only rewritten every few seconds of audio, so the file on disk usually holds
//! more audio than its header says, and maybe half a frame at its end. [`salvage`] cuts it
//! to whole frames and writes the sizes the file really has (the RIFF, `fact` and `data`
//! sizes), so it plays to its last frame. G.711 recordings and the 16-bit PCM ones from
//! before alike: the layout is read from the header.

use super::writer::seal;
use super::{RecordingError, RecordingInfo, resolve};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes read from the start of the file to find the `fmt ` and `data` chunks.
const HEADER_PROBE: usize = 4096;

/// Repairs the header of the partial recording `root/relative` in place and describes it.
pub fn salvage(root: &Path, relative: &str) -> Result<RecordingInfo, RecordingError> {
    let file = resolve(root, relative)?;
    let io = |source| RecordingError::Io {
        path: file.clone(),
        source,
    };
    let mut handle = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .map_err(io)?;
    let len = handle.metadata().map_err(io)?.len();
    let mut head = vec![0u8; HEADER_PROBE.min(len as usize)];
    handle.read_exact(&mut head).map_err(io)?;
    let layout = Layout::parse(&head).ok_or_else(|| RecordingError::NotWav(file.clone()))?;
    let data_len = (len - layout.data_start) / layout.frame_bytes * layout.frame_bytes;
    let end = layout.data_start + data_len;
    handle.set_len(end).map_err(io)?;
    let riff = u32::try_from(end - 8).map_err(|_| RecordingError::TooLong(file.clone()))?;
    handle.seek(SeekFrom::Start(4)).map_err(io)?;
    handle.write_all(&riff.to_le_bytes()).map_err(io)?;
    handle
        .seek(SeekFrom::Start(layout.data_start - 4))
        .map_err(io)?;
    handle
        .write_all(&(data_len as u32).to_le_bytes())
        .map_err(io)?;
    if let Some(fact) = layout.fact_at {
        let frames = (data_len / layout.frame_bytes) as u32;
        handle.seek(SeekFrom::Start(fact)).map_err(io)?;
        handle.write_all(&frames.to_le_bytes()).map_err(io)?;
    }
    drop(handle);
    seal(&file, relative.to_string(), data_len / layout.frame_bytes)
}

/// Where the audio starts, how many bytes one frame takes, and where the `fact` chunk's
/// frame count is (non-PCM WAVs carry one).
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    data_start: u64,
    frame_bytes: u64,
    fact_at: Option<u64>,
}

impl Layout {
    /// Walks the RIFF chunks of a WAV header (`None`: not a WAV we can repair).
    fn parse(head: &[u8]) -> Option<Self> {
        if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
            return None;
        }
        let mut at = 12usize;
        let mut frame_bytes = None;
        let mut fact_at = None;
        while let Some(chunk) = head.get(at..at + 8) {
            let size = u32::from_le_bytes(chunk[4..8].try_into().ok()?) as usize;
            match &chunk[0..4] {
                b"fmt " => {
                    let align = head.get(at + 8 + 12..at + 8 + 14)?;
                    frame_bytes = Some(u64::from(u16::from_le_bytes(align.try_into().ok()?)));
                }
                b"fact" if size >= 4 => fact_at = Some((at + 8) as u64),
                b"data" => {
                    let frame_bytes = frame_bytes.filter(|b| *b > 0)?;
                    let data_start = (at + 8) as u64;
                    return Some(Self {
                        data_start,
                        frame_bytes,
                        fact_at,
                    });
                }
                _ => {}
            }
            // Chunks are padded to an even size.
            at = at.checked_add(8 + size + size % 2)?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::G711Law;
    use crate::media::recording::{RecordingWriter, WavFormat, header};

    /// What a kill -9 leaves: the header as of the last checkpoint (here none: it says 0),
    /// the audio on disk, maybe half a frame at the end.
    fn crashed(root: &Path, relative: &str, head: &[u8], audio: &[u8]) -> std::path::PathBuf {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(audio);
        bytes.push(1); // half a frame
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_recording_cut_short_by_a_crash_plays_to_its_last_whole_frame() {
        let root = tempfile::tempdir().unwrap();
        let mut writer = RecordingWriter::create(root.path(), "a/b.wav", G711Law::Alaw).unwrap();
        // 3 s of audio (below the 10 s header checkpoint): the header still says 0.
        let audio: Vec<u8> = (0..24_000u32).flat_map(|i| [i as u8, 0x55]).collect();
        writer.write(&audio).unwrap();
        drop(writer); // no finalize: what a kill -9 leaves (plus the buffered tail)
        let path = root.path().join("a/b.wav");
        // Half a frame more at the end, as a crash mid-write leaves.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1]).unwrap();
        drop(f);

        let info = salvage(root.path(), "a/b.wav").unwrap();
        assert_eq!(info.duration_ms, 3_000);
        assert_eq!(info.bytes, 58 + 48_000);
        let bytes = std::fs::read(&path).unwrap();
        let format = WavFormat::G711(G711Law::Alaw);
        assert_eq!(bytes[..58], header(format, 48_000)[..], "sizes and fact");
        assert_eq!(bytes[58..], audio[..]);
    }

    /// A 16-bit PCM recording from before, cut short by a crash, is repaired alike.
    #[test]
    fn a_pcm_recording_from_before_is_salvaged_too() {
        let root = tempfile::tempdir().unwrap();
        let head = header(WavFormat::Pcm16, 0);
        let audio: Vec<u8> = (0..4_000u32)
            .flat_map(|i| (i as i16).to_le_bytes())
            .collect();
        let path = crashed(root.path(), "old.wav", &head, &audio);
        let info = salvage(root.path(), "old.wav").unwrap();
        assert_eq!((info.duration_ms, info.bytes), (250, 44 + 8_000));
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!((reader.len(), reader.spec().channels), (4_000, 2));
        // A G.711 file written by hand the same way.
        let format = WavFormat::G711(G711Law::Ulaw);
        crashed(root.path(), "new.wav", &header(format, 0), &audio);
        let info = salvage(root.path(), "new.wav").unwrap();
        assert_eq!((info.duration_ms, info.bytes), (500, 58 + 8_000));
        let bytes = std::fs::read(root.path().join("new.wav")).unwrap();
        assert_eq!(bytes[..58], header(format, 8_000)[..]);
    }

    #[test]
    fn a_file_that_is_no_wav_is_an_error_not_a_panic() {
        let root = std::env::temp_dir().join(format!("sas-salvage-bad-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("x.wav"), b"RIFF").unwrap();
        assert!(matches!(
            salvage(&root, "x.wav"),
            Err(RecordingError::NotWav(_))
        ));
        std::fs::write(root.join("y.wav"), b"").unwrap();
        assert!(salvage(&root, "y.wav").is_err());
        assert!(matches!(
            salvage(&root, "../y.wav"),
            Err(RecordingError::UnsafePath(_))
        ));
        std::fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn the_layout_is_found_past_extra_chunks() {
        let mut head = b"RIFF\0\0\0\0WAVE".to_vec();
        head.extend(b"LIST\x03\0\0\0abc\0");
        head.extend(b"fmt \x10\0\0\0");
        head.extend([1, 0, 2, 0, 0x40, 0x1f, 0, 0, 0, 0x7d, 0, 0, 4, 0, 16, 0]);
        head.extend(b"data\0\0\0\0");
        let layout = Layout::parse(&head).unwrap();
        assert_eq!(layout.frame_bytes, 4);
        assert_eq!(layout.data_start, head.len() as u64);
        assert_eq!(layout.fact_at, None);
        let g711 = header(WavFormat::G711(G711Law::Alaw), 0);
        let layout = Layout::parse(&g711).unwrap();
        assert_eq!((layout.frame_bytes, layout.data_start), (2, 58));
        assert_eq!(layout.fact_at, Some(46));
    }
}

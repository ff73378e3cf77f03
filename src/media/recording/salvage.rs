//! Salvaging the recording of a call the router did not end (crash, `kill -9`): the WAV
//! header is only rewritten every few seconds of audio, so the file on disk usually holds
//! more audio than its header says, and maybe half a frame at its end. [`salvage`] cuts it
//! to whole frames and writes the sizes the file really has, so it plays to its last frame.

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
    drop(handle);
    seal(&file, relative.to_string(), data_len / layout.frame_bytes)
}

/// Where the audio starts and how many bytes one frame takes.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    data_start: u64,
    frame_bytes: u64,
}

impl Layout {
    /// Walks the RIFF chunks of a WAV header (`None`: not a PCM WAV we can repair).
    fn parse(head: &[u8]) -> Option<Self> {
        if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
            return None;
        }
        let mut at = 12usize;
        let mut frame_bytes = None;
        while let Some(chunk) = head.get(at..at + 8) {
            let size = u32::from_le_bytes(chunk[4..8].try_into().ok()?) as usize;
            match &chunk[0..4] {
                b"fmt " => {
                    let align = head.get(at + 8 + 12..at + 8 + 14)?;
                    frame_bytes = Some(u64::from(u16::from_le_bytes(align.try_into().ok()?)));
                }
                b"data" => {
                    let frame_bytes = frame_bytes.filter(|b| *b > 0)?;
                    let data_start = (at + 8) as u64;
                    return Some(Self {
                        data_start,
                        frame_bytes,
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
    use crate::media::recording::RecordingWriter;

    #[test]
    fn a_recording_cut_short_by_a_crash_plays_to_its_last_whole_frame() {
        let root = std::env::temp_dir().join(format!("sas-salvage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut writer = RecordingWriter::create(&root, "a/b.wav").unwrap();
        // 1.5 s of audio (below the 10 s header checkpoint): the header still says 0.
        let samples: Vec<i16> = (0..24_000).map(|i| (i % 100) as i16).collect();
        writer.write(&samples).unwrap();
        drop(writer); // no finalize: what a kill -9 leaves (plus the buffered tail)
        let path = root.join("a/b.wav");
        // Half a frame more at the end, as a crash mid-write leaves.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2]).unwrap();
        drop(f);

        let info = salvage(&root, "a/b.wav").unwrap();
        assert_eq!(info.duration_ms, 1_500);
        assert_eq!(info.bytes, 44 + 48_000);
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len(), 24_000);
        assert_eq!(reader.spec().channels, 2);
        std::fs::remove_dir_all(&root).ok();
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
    }
}

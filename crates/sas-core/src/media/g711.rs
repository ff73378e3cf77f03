//! G.711, the only audio coding on the router's legs: which law a leg uses, its silence,
//! and sample conversion (the companding itself comes from `audio-codec-algorithms`).

/// The two G.711 companding laws (RTP payload types 0 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711Law {
    /// PCMU, payload type 0 (North America, Japan; some SIP trunks).
    Ulaw,
    /// PCMA, payload type 8 (Europe: what French trunks normally offer).
    Alaw,
}

impl G711Law {
    /// The byte encoding digital silence (linear 0) in this law.
    pub const fn silence_byte(self) -> u8 {
        match self {
            G711Law::Ulaw => 0xFF,
            G711Law::Alaw => 0xD5,
        }
    }

    /// The other law.
    pub const fn other(self) -> G711Law {
        match self {
            G711Law::Ulaw => G711Law::Alaw,
            G711Law::Alaw => G711Law::Ulaw,
        }
    }

    /// Decodes one byte to a linear 16-bit sample.
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            G711Law::Ulaw => audio_codec_algorithms::decode_ulaw(byte),
            G711Law::Alaw => audio_codec_algorithms::decode_alaw(byte),
        }
    }

    /// Encodes one linear 16-bit sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711Law::Ulaw => audio_codec_algorithms::encode_ulaw(sample),
            G711Law::Alaw => audio_codec_algorithms::encode_alaw(sample),
        }
    }
}

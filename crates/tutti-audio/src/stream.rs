//! The live stream tap: the engine's output as 16-bit PCM for the browser's "listen" player
//! (`web/audio/listen.js`), which the server sends as WebSocket binary frames.
//!
//! The audio thread's `StreamTap` (an `i16` output tap, `tap.rs`) converts each output
//! block to interleaved stereo `i16` and pushes it into a preallocated `rtrb` ring, **only
//! while a [`StreamReader`] exists**. When the ring is full (the reader is slow or stalled)
//! the block is dropped and counted; the audio thread never waits. A new reader starts from fresh audio (stale
//! samples are discarded), so a listener never hears old sound.
//!
//! Wire format of a chunk from [`StreamReader::read_pcm`]: little-endian signed 16-bit,
//! interleaved L/R, at [`StreamFormat::sample_rate`]; always whole frames.
//!
//! There is one reader at a time (the ring has one consumer): the server should run one
//! task that reads and fans the chunks out to every listening performer.
//!
//! Must never: block the audio thread (the tap's `push` is the only code that runs there),
//! or let a reader hear stale audio.

use std::sync::Arc;

use rtrb::Consumer;
use serde::Serialize;

use crate::tap::{self, Tap, TapShared};
use crate::AudioError;

/// Format of the PCM stream (send it to the browser before the first chunk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StreamFormat {
    /// Frames per second.
    pub sample_rate: u32,
    /// Always 2 (interleaved L, R).
    pub channels: u16,
    /// Always `"s16le"`.
    pub encoding: &'static str,
}

pub(crate) type StreamShared = TapShared<i16>;

/// Audio-thread side of the stream.
pub(crate) type StreamTap = Tap<i16>;

/// Creates the ring (`seconds` of stereo audio) and both ends.
pub(crate) fn stream_ring(sample_rate: u32, seconds: f64) -> (StreamTap, Arc<StreamShared>) {
    tap::ring("stream tap", sample_rate, seconds, 2048)
}

/// Converts a sample to 16-bit with clipping.
#[inline]
pub fn to_i16(x: f32) -> i16 {
    (x.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// The reading end of the stream tap (see the module docs). Dropping it stops the tap.
#[derive(Debug)]
pub struct StreamReader {
    consumer: Option<Consumer<i16>>,
    shared: Arc<StreamShared>,
}

pub(crate) fn open_reader(shared: &Arc<StreamShared>) -> Result<StreamReader, AudioError> {
    let consumer = shared.take_reader()?;
    shared.set_on(true);
    Ok(StreamReader {
        consumer: Some(consumer),
        shared: Arc::clone(shared),
    })
}

impl StreamReader {
    /// The stream's format.
    pub fn format(&self) -> StreamFormat {
        StreamFormat {
            sample_rate: self.shared.sample_rate(),
            channels: 2,
            encoding: "s16le",
        }
    }

    /// Frames waiting to be read.
    pub fn available_frames(&self) -> usize {
        self.consumer.as_ref().map_or(0, |c| c.slots() / 2)
    }

    /// Blocks dropped because this reader fell behind.
    pub fn dropped_blocks(&self) -> u64 {
        self.shared.dropped_blocks()
    }

    /// Appends up to `max_frames` whole frames of s16le PCM to `out`; returns the frames
    /// appended (0 when nothing is waiting). Never blocks.
    pub fn read_pcm(&mut self, out: &mut Vec<u8>, max_frames: usize) -> usize {
        let Some(c) = self.consumer.as_mut() else {
            return 0;
        };
        let n = (c.slots() / 2).min(max_frames) * 2;
        if n == 0 {
            return 0;
        }
        let Ok(chunk) = c.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        out.reserve(n * 2);
        for s in a.iter().chain(b) {
            out.extend_from_slice(&s.to_le_bytes());
        }
        chunk.commit_all();
        n / 2
    }

    /// The next chunk of up to `max_frames` frames as bytes, or `None` when nothing waits.
    pub fn next_chunk(&mut self, max_frames: usize) -> Option<Vec<u8>> {
        let mut v = Vec::new();
        (self.read_pcm(&mut v, max_frames) > 0).then_some(v)
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.shared.set_on(false);
        if let Some(c) = self.consumer.take() {
            self.shared.put_back(c);
        }
    }
}

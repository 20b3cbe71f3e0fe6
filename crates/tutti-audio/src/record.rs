//! WAV recording of a show.
//!
//! The audio thread's `RecordTap` (an `f32` output tap, `tap.rs`) copies each output block,
//! interleaved, into a preallocated `rtrb` ring while a recording is active; a writer
//! thread drains the ring and writes 32-bit float WAV with `hound` (so a recording is
//! bit-exact with what the engine played). When the ring is full — the disk is too slow —
//! the block is **dropped and counted**, never waited for: see
//! [`Recording::dropped_blocks`].
//!
//! The tap sees each block when the engine renders it, one block before `process` hands it
//! to the sink (the engine's FIFO): the file is the output stream, one block early.
//!
//! Only one recording runs at a time (the ring has one consumer).
//!
//! Must never: block the audio thread (the tap's `push` is the only code that runs there).

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rtrb::Consumer;

use crate::tap::{self, Tap, TapShared};
use crate::AudioError;

/// State shared by the tap, the handle and the writer thread.
pub(crate) type RecordShared = TapShared<f32>;

/// Audio-thread side of the recorder.
pub(crate) type RecordTap = Tap<f32>;

/// Creates the ring (`seconds` of stereo audio) and both ends.
pub(crate) fn record_ring(sample_rate: u32, seconds: f64) -> (RecordTap, Arc<RecordShared>) {
    tap::ring("recorder", sample_rate, seconds, 4096)
}

/// What a finished recording wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSummary {
    /// The WAV file.
    pub path: PathBuf,
    /// Stereo frames written.
    pub frames: u64,
    /// Blocks dropped because the writer fell behind (each is a gap in the file).
    pub dropped_blocks: u64,
}

/// A running recording; [`Recording::stop`] finishes the file.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    shared: Arc<RecordShared>,
    thread: Option<JoinHandle<Result<u64, AudioError>>>,
}

pub(crate) fn start(shared: &Arc<RecordShared>, path: &Path) -> Result<Recording, AudioError> {
    let mut consumer = shared.take_reader()?;
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: shared.sample_rate(),
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let writer = match hound::WavWriter::create(path, spec) {
        Ok(w) => w,
        Err(e) => {
            shared.put_back(consumer);
            return Err(AudioError::WavWrite {
                path: path.to_path_buf(),
                reason: e.to_string(),
            });
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        let shared = Arc::clone(shared);
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("tutti-audio-record".into())
            .spawn(move || {
                let result = write_loop(writer, &mut consumer, &stop, &path);
                shared.put_back(consumer);
                result
            })
            .map_err(|source| AudioError::Thread {
                what: "recorder",
                source,
            })?
    };
    shared.set_on(true);
    Ok(Recording {
        path: path.to_path_buf(),
        stop,
        shared: Arc::clone(shared),
        thread: Some(thread),
    })
}

fn write_loop(
    mut writer: hound::WavWriter<BufWriter<std::fs::File>>,
    consumer: &mut Consumer<f32>,
    stop: &AtomicBool,
    path: &Path,
) -> Result<u64, AudioError> {
    let err = |e: hound::Error| AudioError::WavWrite {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut samples: u64 = 0;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let n = consumer.slots() & !1;
        if n > 0 {
            let chunk = consumer.read_chunk(n).map_err(|e| AudioError::WavWrite {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            let (a, b) = chunk.as_slices();
            for &s in a.iter().chain(b) {
                writer.write_sample(s).map_err(err)?;
            }
            chunk.commit_all();
            samples += n as u64;
        } else if stopping {
            break;
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    writer.finalize().map_err(err)?;
    Ok(samples / 2)
}

impl Recording {
    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Blocks dropped so far because the writer fell behind.
    pub fn dropped_blocks(&self) -> u64 {
        self.shared.dropped_blocks()
    }

    /// Stops taking blocks, writes what is queued, finishes the WAV header.
    pub fn stop(mut self) -> Result<RecordingSummary, AudioError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<RecordingSummary, AudioError> {
        self.shared.set_on(false);
        self.stop.store(true, Ordering::Release);
        let frames = match self.thread.take() {
            Some(t) => t.join().map_err(|_| AudioError::WavWrite {
                path: self.path.clone(),
                reason: "the writer thread panicked".into(),
            })??,
            None => 0,
        };
        Ok(RecordingSummary {
            path: self.path.clone(),
            frames,
            dropped_blocks: self.dropped_blocks(),
        })
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.finish() {
                tracing::warn!(error = %e, "recording ended with an error");
            }
        }
    }
}

//! The output tap that the recorder ([`crate::record`], `f32`) and the listen stream
//! ([`crate::stream`], `i16`) share: while the tap is on, the audio thread copies each
//! output block, interleaved L/R and converted to the tap's sample type, into a
//! preallocated `rtrb` ring. When the ring is full (its reader is slow or stalled) the block
//! is **dropped and counted**, never waited for.
//!
//! The ring has one consumer, lent to one reader at a time ([`TapShared::take_reader`]) and
//! handed back when that reader ends ([`TapShared::put_back`]); taking it discards stale
//! samples, so a new reader never gets old sound.
//!
//! Must never: allocate, lock, log or block in [`Tap::push`] (audio thread).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtrb::{Consumer, Producer, RingBuffer};

use crate::AudioError;

/// A sample type a tap can carry.
pub(crate) trait TapSample: Copy + Default + Send + 'static {
    /// The engine's `f32` sample as this type.
    fn from_f32(x: f32) -> Self;
}

impl TapSample for f32 {
    #[inline]
    fn from_f32(x: f32) -> Self {
        x
    }
}

impl TapSample for i16 {
    #[inline]
    fn from_f32(x: f32) -> Self {
        crate::stream::to_i16(x)
    }
}

/// State shared by the audio thread's [`Tap`] and the reader side.
#[derive(Debug)]
pub(crate) struct TapShared<T> {
    on: AtomicBool,
    dropped_blocks: AtomicU64,
    consumer: Mutex<Option<Consumer<T>>>,
    sample_rate: u32,
    /// What the tap feeds, for [`AudioError::Busy`].
    what: &'static str,
}

/// Audio-thread side of a tap.
#[derive(Debug)]
pub(crate) struct Tap<T> {
    producer: Producer<T>,
    shared: Arc<TapShared<T>>,
}

/// Creates the ring (`seconds` of stereo audio, at least `min_frames`) and both ends.
pub(crate) fn ring<T: TapSample>(
    what: &'static str,
    sample_rate: u32,
    seconds: f64,
    min_frames: usize,
) -> (Tap<T>, Arc<TapShared<T>>) {
    let cap = ((f64::from(sample_rate) * seconds) as usize).max(min_frames) * 2;
    let (producer, consumer) = RingBuffer::new(cap);
    let shared = Arc::new(TapShared {
        on: AtomicBool::new(false),
        dropped_blocks: AtomicU64::new(0),
        consumer: Mutex::new(Some(consumer)),
        sample_rate,
        what,
    });
    (
        Tap {
            producer,
            shared: Arc::clone(&shared),
        },
        shared,
    )
}

impl<T: TapSample> Tap<T> {
    /// Audio thread: queues one block if the tap is on; drops and counts it if the ring is
    /// full. Wait-free, allocation-free.
    #[inline]
    pub(crate) fn push(&mut self, left: &[f32], right: &[f32]) {
        if !self.shared.on.load(Ordering::Acquire) {
            return;
        }
        let n = left.len() * 2;
        let Ok(mut chunk) = self.producer.write_chunk(n) else {
            self.shared.dropped_blocks.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (a, b) = chunk.as_mut_slices();
        let mut it = left
            .iter()
            .zip(right)
            .flat_map(|(l, r)| [T::from_f32(*l), T::from_f32(*r)]);
        for s in a.iter_mut().chain(b.iter_mut()) {
            *s = it.next().unwrap_or_default();
        }
        chunk.commit_all();
    }
}

impl<T> TapShared<T> {
    /// Lends the consumer to a new reader, with stale samples discarded and the drop count
    /// reset; [`AudioError::Busy`] while another reader has it. The tap stays off until
    /// [`TapShared::set_on`].
    pub(crate) fn take_reader(&self) -> Result<Consumer<T>, AudioError> {
        let busy = || AudioError::Busy { what: self.what };
        let mut consumer = self
            .consumer
            .lock()
            .map_err(|_| busy())?
            .take()
            .ok_or_else(busy)?;
        let stale = consumer.slots();
        if let Ok(c) = consumer.read_chunk(stale) {
            c.commit_all();
        }
        self.dropped_blocks.store(0, Ordering::Relaxed);
        Ok(consumer)
    }

    /// Hands the consumer back when its reader ends.
    pub(crate) fn put_back(&self, consumer: Consumer<T>) {
        if let Ok(mut slot) = self.consumer.lock() {
            *slot = Some(consumer);
        }
    }

    /// Switches the audio thread's copying on or off.
    pub(crate) fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::Release);
    }

    /// Blocks dropped since the current reader took the consumer.
    pub(crate) fn dropped_blocks(&self) -> u64 {
        self.dropped_blocks.load(Ordering::Relaxed)
    }

    /// The engine's sample rate.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_interleaved_converted_and_dropped_when_full() {
        let (mut tap, shared) = ring::<i16>("test tap", 100, 0.0, 4);
        let mut reader = shared.take_reader().unwrap();
        assert!(matches!(
            shared.take_reader(),
            Err(AudioError::Busy { what: "test tap" })
        ));
        // Off: nothing queued.
        tap.push(&[1.0, 1.0], &[-1.0, -1.0]);
        assert_eq!(reader.slots(), 0);
        shared.set_on(true);
        tap.push(&[1.0, 0.5], &[-1.0, 0.0]);
        let got: Vec<i16> = {
            let c = reader.read_chunk(4).unwrap();
            let (a, b) = c.as_slices();
            let v = a.iter().chain(b).copied().collect();
            c.commit_all();
            v
        };
        assert_eq!(got, [32767, -32767, 16384, 0]);
        // A ring of 4 frames: the second block of 3 does not fit and is dropped whole.
        tap.push(&[0.1; 3], &[0.1; 3]);
        tap.push(&[0.1; 3], &[0.1; 3]);
        assert_eq!(reader.slots(), 6);
        assert_eq!(shared.dropped_blocks(), 1);
        // A new reader starts from fresh audio with the count reset.
        shared.put_back(reader);
        let reader = shared.take_reader().unwrap();
        assert_eq!(reader.slots(), 0);
        assert_eq!(shared.dropped_blocks(), 0);
    }
}

//! Subnormal ("denormal") number handling.
//!
//! Recursive structures (filters, reverb feedback, compressor envelopes) decay towards zero and can
//! produce subnormal floats, which are up to 100x slower on x86. Two defences are used:
//!
//! 1. [`FlushDenormals`], an RAII guard that sets the FTZ (flush-to-zero) and DAZ
//!    (denormals-are-zero) bits of the x86-64 MXCSR register for the current thread and restores
//!    them on drop. `Chain::process` takes it around every block; the engine's audio
//!    thread may hold one for its whole life. On other architectures it does nothing.
//! 2. Every recursive kernel also zeroes state whose magnitude fell below [`STATE_FLOOR`] at the
//!    end of each block (a cheap, portable flush that works without MXCSR).
//!
//! Neither allocates, locks or blocks.

/// States smaller than this (−400 dBFS) are set to zero at block ends.
pub const STATE_FLOOR: f32 = 1e-20;

/// Zeroes values whose magnitude is below [`STATE_FLOOR`].
#[inline]
pub fn flush_slice(v: &mut [f32]) {
    for x in v.iter_mut() {
        if x.abs() < STATE_FLOOR {
            *x = 0.0;
        }
    }
}

/// Sets FTZ and DAZ for the current thread while alive (x86-64 only; a no-op elsewhere).
#[derive(Debug)]
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    previous: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

impl FlushDenormals {
    /// Enables flush-to-zero / denormals-are-zero until the guard is dropped.
    #[inline]
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let previous = mxcsr::read();
            if previous & FTZ_DAZ != FTZ_DAZ {
                mxcsr::write(previous | FTZ_DAZ);
            }
            Self { previous }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            Self {}
        }
    }
}

impl Default for FlushDenormals {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FlushDenormals {
    #[inline]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if self.previous & FTZ_DAZ != FTZ_DAZ {
            mxcsr::write(self.previous);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod mxcsr {
    #[inline]
    #[allow(unsafe_code)]
    pub fn read() -> u32 {
        let mut v: u32 = 0;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR register into the 4 bytes pointed to, which
        // is the local `v`; it has no other effect. SSE is part of the x86-64 baseline.
        unsafe {
            core::arch::asm!("stmxcsr [{}]", in(reg) &mut v as *mut u32, options(nostack, preserves_flags));
        }
        v
    }

    #[inline]
    #[allow(unsafe_code)]
    pub fn write(v: u32) {
        // SAFETY: `ldmxcsr` loads MXCSR from the 4 bytes pointed to (the local `v`). We only ever
        // write a value previously read with FTZ/DAZ possibly added, so no exception is unmasked
        // and the rounding mode is unchanged; only subnormal handling differs.
        unsafe {
            core::arch::asm!("ldmxcsr [{}]", in(reg) &v as *const u32, options(nostack, preserves_flags, readonly));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_flushes_subnormal_products_and_restores() {
        let tiny = std::hint::black_box(1e-30f32);
        let before = std::hint::black_box(tiny) * std::hint::black_box(1e-10f32);
        assert!(before != 0.0 && before.is_subnormal(), "sanity: {before}");
        {
            let _g = FlushDenormals::new();
            let during = std::hint::black_box(tiny) * std::hint::black_box(1e-10f32);
            #[cfg(target_arch = "x86_64")]
            assert_eq!(during, 0.0);
            #[cfg(not(target_arch = "x86_64"))]
            let _ = during;
        }
        let after = std::hint::black_box(tiny) * std::hint::black_box(1e-10f32);
        assert!(after.is_subnormal(), "MXCSR restored");
    }

    #[test]
    fn flush_slice_zeroes_tiny_values_only() {
        let mut v = [1e-30f32, -1e-25, 1e-3, -0.5, 0.0];
        flush_slice(&mut v);
        assert_eq!(v, [0.0, 0.0, 1e-3, -0.5, 0.0]);
    }
}

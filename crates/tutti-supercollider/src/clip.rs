//! One-shot clips on scsynth: a short mono sound handed over as samples (Tutti's own chat
//! sounds) is loaded once into a buffer of its slot (`/b_alloc`, then `/b_setn` in chunks that
//! fit a UDP datagram) and played by the `tutti_clip` SynthDef at the head of the show's group,
//! so the show's `master` node processes it like the voices; the synth frees itself at the
//! clip's end.
//!
//! The SynthDef is built here, byte by byte, in the version-2 format (no `sclang` needed):
//!
//! ```text
//! SynthDef(\tutti_clip, { |buf = 0, amp = 0.8|
//!     var s = PlayBuf.ar(1, buf, BufRateScale.kr(buf), 1, 0, 0, doneAction: 2) * amp;
//!     Out.ar(0, [s, s])
//! })
//! ```
//!
//! Must never: send bytes that [`crate::SynthDefFile::parse`] refuses, or a datagram larger
//! than UDP carries.

/// The SynthDef's name.
pub const CLIP_SYNTHDEF: &str = "tutti_clip";

/// Buffer numbers of the clip slots: slot `n` is buffer `CLIP_BUFFER_BASE + n`.
pub const CLIP_BUFFER_BASE: i32 = 9_000;

/// The most slots (buffers) clips use.
pub const CLIP_SLOTS: u32 = 64;

/// Samples per `/b_setn` (32 KB of floats: well inside one UDP datagram).
pub const SETN_CHUNK: usize = 8_000;

/// The most frames a clip may have (10 s at 48 kHz).
pub const MAX_CLIP_FRAMES: usize = 480_000;

fn pstring(out: &mut Vec<u8>, s: &str) {
    out.push(s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// The `tutti_clip` SynthDef file (version 2).
pub fn clip_synthdef() -> Vec<u8> {
    const SCALAR_KR: i8 = 1;
    const AR: i8 = 2;
    // Constants: 0, 1, 2.
    const C0: i32 = 0;
    const C1: i32 = 1;
    const C2: i32 = 2;
    const K: i32 = -1;
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(b"SCgf");
    b.extend_from_slice(&2i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    pstring(&mut b, CLIP_SYNTHDEF);
    let constants = [0.0f32, 1.0, 2.0];
    b.extend_from_slice(&(constants.len() as i32).to_be_bytes());
    for c in constants {
        b.extend_from_slice(&c.to_be_bytes());
    }
    let params = [0.0f32, 0.8];
    b.extend_from_slice(&(params.len() as i32).to_be_bytes());
    for p in params {
        b.extend_from_slice(&p.to_be_bytes());
    }
    b.extend_from_slice(&2i32.to_be_bytes());
    for (i, name) in ["buf", "amp"].iter().enumerate() {
        pstring(&mut b, name);
        b.extend_from_slice(&(i as i32).to_be_bytes());
    }
    // (class, rate, inputs as (ugen, output or constant), outputs' rates, special index)
    type UGen<'a> = (&'a str, i8, &'a [(i32, i32)], &'a [i8], i16);
    let ugens: [UGen<'_>; 5] = [
        // 0: the controls buf, amp
        ("Control", SCALAR_KR, &[], &[SCALAR_KR, SCALAR_KR], 0),
        // 1: BufRateScale.kr(buf)
        ("BufRateScale", SCALAR_KR, &[(0, 0)], &[SCALAR_KR], 0),
        // 2: PlayBuf.ar(1, buf, rate, trigger 1, start 0, loop 0, doneAction 2)
        (
            "PlayBuf",
            AR,
            &[(0, 0), (1, 0), (K, C1), (K, C0), (K, C0), (K, C2)],
            &[AR],
            0,
        ),
        // 3: * amp (BinaryOpUGen's special index 2 is multiplication)
        ("BinaryOpUGen", AR, &[(2, 0), (0, 1)], &[AR], 2),
        // 4: Out.ar(0, [s, s])
        ("Out", AR, &[(K, C0), (3, 0), (3, 0)], &[], 0),
    ];
    b.extend_from_slice(&(ugens.len() as i32).to_be_bytes());
    for (class, rate, inputs, outputs, special) in ugens {
        pstring(&mut b, class);
        b.push(rate as u8);
        b.extend_from_slice(&(inputs.len() as i32).to_be_bytes());
        b.extend_from_slice(&(outputs.len() as i32).to_be_bytes());
        b.extend_from_slice(&special.to_be_bytes());
        for (u, o) in inputs {
            b.extend_from_slice(&u.to_be_bytes());
            b.extend_from_slice(&o.to_be_bytes());
        }
        for r in outputs {
            b.push(*r as u8);
        }
    }
    b.extend_from_slice(&0i16.to_be_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SynthDefFile;

    #[test]
    fn the_clip_synthdef_parses_with_its_controls() {
        let file = SynthDefFile::parse(CLIP_SYNTHDEF, &clip_synthdef()).expect("parses");
        assert_eq!(file.defs.len(), 1);
        let def = &file.defs[0];
        assert_eq!(def.name, CLIP_SYNTHDEF);
        let names: Vec<(&str, usize, f32)> = def
            .controls
            .iter()
            .map(|c| (c.name.as_str(), c.index, c.default))
            .collect();
        assert_eq!(names, [("buf", 0, 0.0), ("amp", 1, 0.8)]);
        // Every truncation is refused (scsynth would crash on one).
        let bytes = clip_synthdef();
        for n in 0..bytes.len() {
            assert!(SynthDefFile::parse("cut", &bytes[..n]).is_err(), "{n}");
        }
    }
}

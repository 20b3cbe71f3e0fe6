//! OSC packets and commands: `tutti_osc::parse_packet` never panics on any datagram, and
//! every command it accepts names a valid parameter with finite numbers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_osc::{parse_packet, validate_param, OscCommand, OscOverride};

fuzz_target!(|data: &[u8]| {
    let Ok(commands) = parse_packet(data) else {
        return;
    };
    for c in commands {
        match c {
            OscCommand::Override { param, mode } => {
                validate_param(&param).expect("an accepted parameter name is valid");
                let finite = match mode {
                    OscOverride::Lock(v) | OscOverride::Bias(v) => v.is_finite(),
                    OscOverride::Blend { target, factor } => {
                        target.is_finite() && (0.0..=1.0).contains(&factor)
                    }
                    OscOverride::Clamp { lo, hi } => lo.is_finite() && hi.is_finite() && lo <= hi,
                    OscOverride::Freeze => true,
                };
                assert!(finite, "accepted {mode:?} for {param}");
            }
            OscCommand::Release { param, mode } => {
                validate_param(&param).expect("an accepted parameter name is valid");
                if let Some(m) = mode {
                    assert!(tutti_osc::OVERRIDE_MODES.contains(&m.as_str()), "mode {m}");
                }
            }
            OscCommand::Cue { voice } => {
                validate_param(&voice).expect("an accepted voice name is valid");
            }
            OscCommand::Session(_) | OscCommand::Reset | OscCommand::Bypass(_) => {}
        }
    }
});

//! The stored form of a chunk of moments (the store keeps it as an opaque blob):
//! for each moment, `at_ms` (i64 LE), the section (u8 length, 0 = none, then UTF-8 bytes),
//! then the vector (`dims` × f32 LE).
//!
//! Must never: panic on a damaged blob (decoding answers an error that `check` reports).

use crate::error::MemoryError;
use crate::model::Moment;

/// Encodes moments (already validated against `dims`).
pub fn encode(moments: &[Moment], dims: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(moments.len() * (9 + 4 * dims));
    for m in moments {
        out.extend_from_slice(&m.at_ms.to_le_bytes());
        let s = m.section.as_deref().unwrap_or("");
        let len = s.len().min(255);
        out.push(len as u8);
        out.extend_from_slice(&s.as_bytes()[..len]);
        for x in m.vector.iter().take(dims) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Decodes a chunk of `count` moments of `dims` dimensions.
pub fn decode(data: &[u8], count: usize, dims: usize) -> Result<Vec<Moment>, MemoryError> {
    let bad = |what: &str| MemoryError::Internal(format!("damaged moment chunk: {what}"));
    let mut out = Vec::with_capacity(count);
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8], MemoryError> {
        let end = at.checked_add(n).ok_or_else(|| bad("overflow"))?;
        let s = data.get(*at..end).ok_or_else(|| bad("too short"))?;
        *at = end;
        Ok(s)
    };
    for _ in 0..count {
        let ms = take(&mut at, 8)?;
        let at_ms = i64::from_le_bytes(ms.try_into().map_err(|_| bad("time"))?);
        let len = usize::from(take(&mut at, 1)?[0]);
        let section = if len == 0 {
            None
        } else {
            Some(
                std::str::from_utf8(take(&mut at, len)?)
                    .map_err(|_| bad("section is not UTF-8"))?
                    .to_owned(),
            )
        };
        let raw = take(&mut at, 4 * dims)?;
        let vector: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if vector.iter().any(|x| !x.is_finite()) {
            return Err(bad("non-finite component"));
        }
        out.push(Moment {
            at_ms,
            section,
            vector,
        });
    }
    if at != data.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let ms = vec![
            Moment {
                at_ms: 5,
                section: Some("storm".into()),
                vector: vec![0.5, -1.0],
            },
            Moment {
                at_ms: 7,
                section: None,
                vector: vec![0.0, 2.0],
            },
        ];
        let b = encode(&ms, 2);
        assert_eq!(decode(&b, 2, 2).unwrap(), ms);
        assert!(decode(&b[..b.len() - 1], 2, 2).is_err());
        assert!(decode(&b, 3, 2).is_err());
        assert!(decode(&b, 1, 2).is_err());
    }
}

//! Attachments: what a file is, judged from its bytes alone (never from its name or the
//! `Content-Type` a client sent), whether Tutti accepts it, and an image's thumbnail.
//!
//! The allow-list ([`MediaType`]) holds formats a browser shows or plays without running
//! anything: PNG, JPEG, GIF, WebP, PDF, plain UTF-8 text, WAV, MP3 and Ogg. Markup (HTML,
//! XML, SVG) is refused even when it is valid text, so no stored file can become a script in
//! a browser. An image's dimensions are read from its header and checked
//! ([`MAX_IMAGE_SIDE`], [`MAX_IMAGE_PIXELS`]) before anything is decoded (a small file that
//! claims 100,000 × 100,000 pixels is refused without allocating them); the decoder runs with
//! the same limits.
//!
//! Must never: trust a file's name, decode an image larger than the limits, panic on any
//! input.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// The widest or tallest image accepted, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8000;
/// The most pixels in an accepted image (width × height).
pub const MAX_IMAGE_PIXELS: u64 = 40_000_000;
/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// The most characters in an attachment's (sanitised) file name.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// A file type Tutti accepts, as sniffed from the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `image/png`.
    Png,
    /// `image/jpeg`.
    Jpeg,
    /// `image/gif`.
    Gif,
    /// `image/webp`.
    Webp,
    /// `application/pdf`.
    Pdf,
    /// `text/plain` (valid UTF-8, no control characters but tab, newline, carriage return and
    /// form feed, not markup).
    Text,
    /// `audio/wav`.
    Wav,
    /// `audio/mpeg`.
    Mp3,
    /// `audio/ogg`.
    Ogg,
}

impl MediaType {
    /// Every accepted type.
    pub const ALL: &'static [MediaType] = &[
        MediaType::Png,
        MediaType::Jpeg,
        MediaType::Gif,
        MediaType::Webp,
        MediaType::Pdf,
        MediaType::Text,
        MediaType::Wav,
        MediaType::Mp3,
        MediaType::Ogg,
    ];

    /// The MIME type (what is stored and served as `Content-Type`).
    pub const fn mime(self) -> &'static str {
        match self {
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Gif => "image/gif",
            MediaType::Webp => "image/webp",
            MediaType::Pdf => "application/pdf",
            MediaType::Text => "text/plain",
            MediaType::Wav => "audio/wav",
            MediaType::Mp3 => "audio/mpeg",
            MediaType::Ogg => "audio/ogg",
        }
    }

    /// The type with this MIME name.
    pub fn from_mime(mime: &str) -> Option<MediaType> {
        Self::ALL.iter().copied().find(|m| m.mime() == mime)
    }

    /// An image (it gets a thumbnail and is shown inline).
    pub const fn is_image(self) -> bool {
        matches!(
            self,
            MediaType::Png | MediaType::Jpeg | MediaType::Gif | MediaType::Webp
        )
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            MediaType::Png => Some(ImageFormat::Png),
            MediaType::Jpeg => Some(ImageFormat::Jpeg),
            MediaType::Gif => Some(ImageFormat::Gif),
            MediaType::Webp => Some(ImageFormat::WebP),
            _ => None,
        }
    }
}

impl std::fmt::Display for MediaType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mime())
    }
}

/// Why a file was refused. Each has a stable code ([`AttachError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The file is empty.
    #[error("the file is empty")]
    Empty,
    /// Not one of the accepted types; `found` says what the bytes look like.
    #[error(
        "the file's content is {found}, which is not accepted \
         (accepted: PNG, JPEG, GIF and WebP images, PDF, plain UTF-8 text, WAV, MP3, Ogg)"
    )]
    Unsupported {
        /// What the bytes look like (for example "HTML, XML or SVG markup").
        found: &'static str,
    },
    /// An image whose header claims more pixels than accepted.
    #[error(
        "the image is {width}×{height} pixels; at most {MAX_IMAGE_SIDE} on a side and \
         {MAX_IMAGE_PIXELS} in all are accepted"
    )]
    ImageTooLarge {
        /// Its width as its header says.
        width: u32,
        /// Its height as its header says.
        height: u32,
    },
    /// The bytes start like an image of this type but do not decode.
    #[error("the file starts like {media_type} but is not a valid image: {reason}")]
    BadImage {
        /// The type its first bytes claim.
        media_type: MediaType,
        /// What the decoder said.
        reason: String,
    },
}

impl AttachError {
    /// The stable error code: `empty_file`, `unsupported_media_type`, `image_too_large` or
    /// `invalid_image`.
    pub const fn code(&self) -> &'static str {
        match self {
            AttachError::Empty => "empty_file",
            AttachError::Unsupported { .. } => "unsupported_media_type",
            AttachError::ImageTooLarge { .. } => "image_too_large",
            AttachError::BadImage { .. } => "invalid_image",
        }
    }
}

/// Sniffs the type of a whole file from its bytes (plain text needs all of them: it must be
/// valid UTF-8 throughout).
pub fn sniff(bytes: &[u8]) -> Result<MediaType, AttachError> {
    if bytes.is_empty() {
        return Err(AttachError::Empty);
    }
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(MediaType::Png);
    }
    if starts(b"\xff\xd8\xff") {
        return Ok(MediaType::Jpeg);
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Ok(MediaType::Gif);
    }
    if bytes.len() >= 12 && starts(b"RIFF") {
        match &bytes[8..12] {
            b"WEBP" => return Ok(MediaType::Webp),
            b"WAVE" => return Ok(MediaType::Wav),
            _ => {
                return Err(AttachError::Unsupported {
                    found: "a RIFF file of another kind",
                })
            }
        }
    }
    if starts(b"%PDF-") {
        return Ok(MediaType::Pdf);
    }
    if starts(b"OggS") {
        return Ok(MediaType::Ogg);
    }
    if starts(b"ID3") || is_mp3_frame(bytes) {
        return Ok(MediaType::Mp3);
    }
    if let Some(found) = known_refused(bytes) {
        return Err(AttachError::Unsupported { found });
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let body = text.trim_start_matches('\u{feff}').trim_start();
            if body.starts_with('<') {
                return Err(AttachError::Unsupported {
                    found: "HTML, XML or SVG markup",
                });
            }
            if text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
            {
                return Err(AttachError::Unsupported {
                    found: "text with control characters",
                });
            }
            Ok(MediaType::Text)
        }
        Err(_) => Err(AttachError::Unsupported {
            found: "binary data of an unknown kind",
        }),
    }
}

/// An MPEG audio frame header: 11 sync bits, a version and a layer that are not reserved,
/// a bitrate index that is neither free nor bad and a sample rate that is not reserved.
fn is_mp3_frame(b: &[u8]) -> bool {
    b.len() >= 4
        && b[0] == 0xff
        && b[1] & 0xe0 == 0xe0
        && b[1] & 0x18 != 0x08
        && b[1] & 0x06 != 0
        && b[2] >> 4 != 0
        && b[2] >> 4 != 0x0f
        && (b[2] >> 2) & 0x03 != 0x03
}

/// Common formats that are refused, named so the error says what was found.
fn known_refused(b: &[u8]) -> Option<&'static str> {
    const KNOWN: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "a ZIP archive (or an office document)"),
        (b"\x7fELF", "an ELF executable"),
        (b"MZ", "a Windows executable"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (b"BM", "a BMP image"),
        (b"II*\0", "a TIFF image"),
        (b"MM\0*", "a TIFF image"),
        (b"fLaC", "FLAC audio"),
        (b"%!PS", "a PostScript file"),
        (b"\xca\xfe\xba\xbe", "a Java class or Mach-O file"),
        (b"\0asm", "WebAssembly"),
    ];
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        return Some("an MP4 or QuickTime file");
    }
    KNOWN
        .iter()
        .find(|(magic, _)| b.starts_with(magic))
        .map(|(_, what)| *what)
}

/// What an accepted image is: its size and a thumbnail (PNG, at most [`THUMBNAIL_SIDE`] on
/// its longest side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The thumbnail, a PNG file.
    pub thumbnail_png: Vec<u8>,
}

/// The dimensions an image's header claims, checked against the limits before any decoding.
pub fn image_dimensions(bytes: &[u8], media_type: MediaType) -> Result<(u32, u32), AttachError> {
    let Some(format) = media_type.image_format() else {
        return Err(AttachError::BadImage {
            media_type,
            reason: "not an image type".into(),
        });
    };
    let bad = |e: image::ImageError| AttachError::BadImage {
        media_type,
        reason: e.to_string(),
    };
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(bad)?;
    if width == 0 || height == 0 {
        return Err(AttachError::BadImage {
            media_type,
            reason: "it has no pixels".into(),
        });
    }
    if width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(AttachError::ImageTooLarge { width, height });
    }
    Ok((width, height))
}

/// Checks an image's dimensions ([`image_dimensions`]), then decodes it (under the same limits)
/// and makes its thumbnail. CPU-bound: run it off the async threads.
pub fn image_info(bytes: &[u8], media_type: MediaType) -> Result<ImageInfo, AttachError> {
    let (width, height) = image_dimensions(bytes, media_type)?;
    let bad = |e: image::ImageError| AttachError::BadImage {
        media_type,
        reason: e.to_string(),
    };
    let format = media_type.image_format().ok_or(AttachError::BadImage {
        media_type,
        reason: "not an image type".into(),
    })?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    // RGBA at 16 bits per channel for the largest accepted image, and the decoder's own needs.
    limits.max_alloc = Some(MAX_IMAGE_PIXELS * 8 + (64 << 20));
    reader.limits(limits);
    let image = reader.decode().map_err(bad)?;
    // Never scaled up: a small image is its own thumbnail (re-encoded).
    let thumb = if width <= THUMBNAIL_SIDE && height <= THUMBNAIL_SIDE {
        image
    } else {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    };
    let mut out = Cursor::new(Vec::new());
    thumb.write_to(&mut out, ImageFormat::Png).map_err(bad)?;
    Ok(ImageInfo {
        width,
        height,
        thumbnail_png: out.into_inner(),
    })
}

/// A client's file name made safe to store and show: its last path component, control and
/// bidi-override characters and the characters Windows refuses replaced by `_`, trimmed,
/// at most [`MAX_FILE_NAME_CHARS`] characters (the end kept, so the extension stays);
/// `"file"` when nothing is left. The name is only ever shown: it decides nothing.
pub fn sanitize_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}');
            let zero_width = matches!(c, '\u{200b}'..='\u{200d}' | '\u{feff}' | '\u{2060}');
            if c.is_control() || bidi || zero_width || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
            {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim().trim_matches('.').trim();
    if trimmed.is_empty() {
        return "file".to_owned();
    }
    let count = trimmed.chars().count();
    if count <= MAX_FILE_NAME_CHARS {
        return trimmed.to_owned();
    }
    trimmed.chars().skip(count - MAX_FILE_NAME_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 30, 30, 255]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).expect("encode");
        out.into_inner()
    }

    /// A PNG signature, an IHDR chunk claiming `width` × `height` and the start of a
    /// compressed IDAT chunk: a decompression bomb's first bytes.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend_from_slice(&13u32.to_be_bytes());
        out.extend_from_slice(&ihdr);
        out.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        let idat = b"IDAT\x78\x9c";
        out.extend_from_slice(&2u32.to_be_bytes());
        out.extend_from_slice(idat);
        out.extend_from_slice(&crc32(idat).to_be_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn formats_are_sniffed_from_their_bytes() {
        assert_eq!(sniff(&png(2, 2)), Ok(MediaType::Png));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0rest"), Ok(MediaType::Jpeg));
        assert_eq!(sniff(b"GIF89a...."), Ok(MediaType::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok(MediaType::Webp));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Ok(MediaType::Wav));
        assert_eq!(sniff(b"%PDF-1.7\n"), Ok(MediaType::Pdf));
        assert_eq!(sniff(b"OggS\0\x02"), Ok(MediaType::Ogg));
        assert_eq!(sniff(b"ID3\x04\0"), Ok(MediaType::Mp3));
        assert_eq!(sniff(b"\xff\xfb\x90\x64"), Ok(MediaType::Mp3));
        assert_eq!(
            sniff("plain words\nand tabs\t, ünïcode".as_bytes()),
            Ok(MediaType::Text)
        );
    }

    #[test]
    fn markup_executables_and_unknown_bytes_are_refused_and_named() {
        for (bytes, found) in [
            (
                &b"<!DOCTYPE html><script>alert(1)</script>"[..],
                "HTML, XML or SVG markup",
            ),
            (
                b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>",
                "HTML, XML or SVG markup",
            ),
            (b"<?xml version='1.0'?>", "HTML, XML or SVG markup"),
            (b"PK\x03\x04rest", "a ZIP archive (or an office document)"),
            (b"MZ\x90\0", "a Windows executable"),
            (b"\x7fELF\x02", "an ELF executable"),
            (b"\0\x01\x02\xfe", "binary data of an unknown kind"),
            (b"text\x07bell", "text with control characters"),
        ] {
            let err = sniff(bytes).expect_err("refused");
            assert_eq!(err, AttachError::Unsupported { found }, "{bytes:?}");
            assert_eq!(err.code(), "unsupported_media_type");
        }
        assert_eq!(sniff(b"").expect_err("empty").code(), "empty_file");
    }

    #[test]
    fn a_bomb_header_is_refused_before_decoding() {
        let bomb = png_header(100_000, 100_000);
        assert_eq!(sniff(&bomb), Ok(MediaType::Png));
        let err = image_info(&bomb, MediaType::Png).expect_err("refused");
        assert_eq!(
            err,
            AttachError::ImageTooLarge {
                width: 100_000,
                height: 100_000
            }
        );
        assert_eq!(err.code(), "image_too_large");
        // Within each side's limit but too many pixels in all.
        let err = image_info(&png_header(8000, 8000), MediaType::Png).expect_err("pixels");
        assert_eq!(err.code(), "image_too_large");
    }

    #[test]
    fn an_image_gets_a_bounded_thumbnail() {
        let info = image_info(&png(640, 200), MediaType::Png).expect("image");
        assert_eq!((info.width, info.height), (640, 200));
        assert_eq!(sniff(&info.thumbnail_png), Ok(MediaType::Png));
        let (w, h) = image_dimensions(&info.thumbnail_png, MediaType::Png).expect("thumb");
        assert_eq!((w, h), (320, 100));
        let small = image_info(&png(10, 20), MediaType::Png).expect("small");
        assert_eq!(
            image_dimensions(&small.thumbnail_png, MediaType::Png).expect("thumb"),
            (10, 20)
        );
    }

    #[test]
    fn a_truncated_image_is_invalid() {
        let mut bytes = png(50, 50);
        bytes.truncate(60);
        let err = image_info(&bytes, MediaType::Png).expect_err("truncated");
        assert_eq!(err.code(), "invalid_image");
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("C:\\x\\photo.png"), "photo.png");
        assert_eq!(sanitize_file_name("evil\u{202e}gnp.exe"), "evil_gnp.exe");
        assert_eq!(sanitize_file_name("a<b>\"c\".txt"), "a_b__c_.txt");
        assert_eq!(sanitize_file_name("  ..  "), "file");
        assert_eq!(sanitize_file_name(""), "file");
        let long = format!("{}.pdf", "x".repeat(300));
        let s = sanitize_file_name(&long);
        assert_eq!(s.chars().count(), MAX_FILE_NAME_CHARS);
        assert!(s.ends_with(".pdf"));
    }
}

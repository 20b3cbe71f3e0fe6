//! Tutti's chat without transport or storage: what a message, a boost, a display name and a
//! client message id may be, which users a message mentions, and how a message's light
//! formatting becomes HTML that is safe to put into a page.
//!
//! # Where it sits
//! The live hub (`/live/v1`), the management API and the pages take user input, turn it into
//! these types once at their edge ([`MessageText::parse`], [`Boost::parse`], …) and hand the
//! result to the store (`tutti-store`'s `chat` module, which checks sizes again and keeps the
//! rooms' event sequences). Whatever shows a message renders it with [`render_html`].
//!
//! # Rendering
//! Messages are CommonMark, parsed by `pulldown-cmark` (without its HTML renderer, which passes
//! raw HTML through). [`render_html`] writes every tag itself from an allow-list — paragraphs,
//! bold, italics, strikethrough, inline code, code blocks, quotes, lists, line breaks, rules and
//! links — and escapes every piece of text, including raw HTML in the message, which is shown
//! as text. A link becomes `<a>` only when its destination parses as an absolute `http` or
//! `https` URL (after CommonMark's own entity and escape decoding, so `javascript&#58;` is
//! caught); any other link, and every image, is rendered as its text alone. Bare `http(s)://`
//! URLs in text are linked the same way. No attribute other than a link's `href` (written from
//! the parsed URL) and fixed `rel`/`class` values is ever written.
//!
//! # Sounds
//! A message `/play <sound>` plays one of [`SOUNDS`] on the pages following its room
//! ([`MessageText::sound`]); an unknown name is refused when the text is parsed.
//!
//! # Attachments
//! [`attach`] judges a file by its bytes alone ([`sniff`]: an allow-list of images, PDF, plain
//! text and audio; markup refused), checks an image's dimensions from its header before
//! decoding it, and makes its thumbnail ([`image_info`]); storing the files is the store's.
//!
//! # Must never
//! Know about sockets, HTTP, WebSockets or the database; let a byte of user input reach the
//! HTML unescaped; link to anything but `http`/`https`; panic on any input.

pub mod attach;
mod input;
mod render;
mod sounds;

pub use attach::{
    image_dimensions, image_info, sanitize_file_name, sniff, AttachError, ImageInfo, MediaType,
};
pub use input::{
    Boost, ChatInputError, ClientMessageId, DisplayName, MessageText, MAX_BOOST_CHARS,
    MAX_CLIENT_MESSAGE_ID_LEN, MAX_DISPLAY_NAME_CHARS, MAX_MESSAGE_CHARS,
};
pub use render::{mentions, render_html, render_html_with, MAX_MENTIONS};
pub use sounds::{play_command, SOUNDS};

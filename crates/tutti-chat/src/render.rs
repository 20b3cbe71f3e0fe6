//! Light formatting to safe HTML, and @mentions.
//!
//! The parser is `pulldown-cmark`; this module walks its events and writes only tags from a
//! fixed allow-list, escaping every piece of text (raw HTML in a message is text too). See the
//! crate's documentation for the rules; the tests below hold the payloads that must come out
//! inert.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use url::Url;

use crate::input::MessageText;

/// The most distinct users one message can mention.
pub const MAX_MENTIONS: usize = 50;

/// The markdown features we parse (CommonMark plus strikethrough; no tables, footnotes, math or
/// heading attributes).
fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH
}

/// Writes `s` with `& < > " '` escaped, safe in element content and quoted attributes.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// The URL to link to, if `dest` is an absolute `http` or `https` URL with a host.
fn safe_href(dest: &str) -> Option<Url> {
    let url = Url::parse(dest.trim()).ok()?;
    let web = matches!(url.scheme(), "http" | "https");
    (web && url.host_str().is_some_and(|h| !h.is_empty())).then_some(url)
}

fn open_link(out: &mut String, url: &Url) {
    out.push_str("<a href=\"");
    escape_into(out, url.as_str());
    out.push_str("\" rel=\"nofollow noopener noreferrer\">");
}

/// Whether `b` can be part of a username (`[A-Za-z0-9._-]`).
fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

/// The mentions in one run of plain text: (start of `@`, end of name) byte ranges. A mention is
/// `@name` at the start or after a character that cannot be part of a name or an address
/// (so `ana@example.com` is no mention); a trailing `.` or `-` ends a sentence, not the name.
fn mention_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_start = i == 0 || !(name_byte(bytes[i - 1]) || bytes[i - 1] == b'@');
        if bytes[i] == b'@' && at_start {
            let mut end = i + 1;
            while end < bytes.len() && name_byte(bytes[end]) {
                end += 1;
            }
            while end > i + 1 && matches!(bytes[end - 1], b'.' | b'-') {
                end -= 1;
            }
            if end > i + 1 && end - i - 1 <= 64 {
                spans.push((i, end));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    spans
}

/// The bare `http://` or `https://` URLs in one run of plain text, as byte ranges. A URL starts
/// at the start or after whitespace or an opening bracket, runs to whitespace or `<>"`, and
/// leaves trailing punctuation (`.,;:!?'")]}`) to the sentence.
fn url_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let lower = text.to_ascii_lowercase();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &lower[i..];
        let starts = rest.starts_with("http://") || rest.starts_with("https://");
        let boundary =
            i == 0 || bytes[i - 1].is_ascii_whitespace() || b"([{".contains(&bytes[i - 1]);
        if starts && boundary {
            let mut end = i;
            while end < bytes.len()
                && !bytes[end].is_ascii_whitespace()
                && !matches!(bytes[end], b'<' | b'>' | b'"')
            {
                end += 1;
            }
            while end > i && b".,;:!?'\")]}".contains(&bytes[end - 1]) {
                end -= 1;
            }
            // `end` stops at ASCII bytes only, so it is a char boundary.
            spans.push((i, end));
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    spans
}

/// Writes one run of plain text: escaped, bare URLs linked, known mentions marked.
fn text_into(out: &mut String, text: &str, linkify: bool, is_member: &dyn Fn(&str) -> bool) {
    let mut spans: Vec<(usize, usize, bool)> = Vec::new();
    if linkify {
        spans.extend(url_spans(text).into_iter().map(|(a, b)| (a, b, true)));
    }
    for (a, b) in mention_spans(text) {
        if !spans.iter().any(|&(s, e, _)| a < e && s < b) {
            spans.push((a, b, false));
        }
    }
    spans.sort_unstable();
    let mut at = 0;
    for (start, end, is_url) in spans {
        escape_into(out, &text[at..start]);
        let piece = &text[start..end];
        if is_url {
            match safe_href(piece) {
                Some(url) => {
                    open_link(out, &url);
                    escape_into(out, piece);
                    out.push_str("</a>");
                }
                None => escape_into(out, piece),
            }
        } else if is_member(&piece[1..]) {
            out.push_str("<span class=\"mention\">");
            escape_into(out, piece);
            out.push_str("</span>");
        } else {
            escape_into(out, piece);
        }
        at = end;
    }
    escape_into(out, &text[at..]);
}

/// Renders a message as HTML, every text escaped (see the crate's documentation). Mentions are
/// left as text.
pub fn render_html(text: &MessageText) -> String {
    render_html_with(text, &|_| false)
}

/// [`render_html`], marking `@name` as `<span class="mention">` where `is_member(name)` (a
/// user of the room, say).
pub fn render_html_with(text: &MessageText, is_member: &dyn Fn(&str) -> bool) -> String {
    let source = text.as_str();
    let mut out = String::with_capacity(source.len() + source.len() / 4 + 16);
    // For each open link or image: whether an `<a>` was written for it.
    let mut links: Vec<bool> = Vec::new();
    // Inside a code block (text verbatim) or an image (alt text only).
    let mut in_code_block = false;
    let mut in_image = 0usize;
    for event in Parser::new_ext(source, options()) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Paragraph | Tag::Heading { .. } | Tag::HtmlBlock => out.push_str("<p>"),
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(_) => {
                    in_code_block = true;
                    out.push_str("<pre><code>");
                }
                Tag::List(Some(_)) => out.push_str("<ol>"),
                Tag::List(None) => out.push_str("<ul>"),
                Tag::Item => out.push_str("<li>"),
                Tag::Emphasis => out.push_str("<em>"),
                Tag::Strong => out.push_str("<strong>"),
                Tag::Strikethrough => out.push_str("<del>"),
                Tag::Link { dest_url, .. } => {
                    let url = (links.is_empty() && in_image == 0)
                        .then(|| safe_href(&dest_url))
                        .flatten();
                    if let Some(url) = &url {
                        open_link(&mut out, url);
                    }
                    links.push(url.is_some());
                }
                Tag::Image { .. } => in_image += 1,
                // Not enabled (tables, footnotes, definition lists, …): their text is kept.
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::HtmlBlock => {
                    out.push_str("</p>");
                }
                TagEnd::BlockQuote(_) => out.push_str("</blockquote>"),
                TagEnd::CodeBlock => {
                    in_code_block = false;
                    out.push_str("</code></pre>");
                }
                TagEnd::List(true) => out.push_str("</ol>"),
                TagEnd::List(false) => out.push_str("</ul>"),
                TagEnd::Item => out.push_str("</li>"),
                TagEnd::Emphasis => out.push_str("</em>"),
                TagEnd::Strong => out.push_str("</strong>"),
                TagEnd::Strikethrough => out.push_str("</del>"),
                TagEnd::Link => {
                    let opened = links.pop().unwrap_or(false);
                    if opened {
                        out.push_str("</a>");
                    }
                }
                TagEnd::Image => in_image = in_image.saturating_sub(1),
                _ => {}
            },
            Event::Text(t) => {
                if in_code_block {
                    escape_into(&mut out, &t);
                } else {
                    let linkify = links.is_empty() && in_image == 0;
                    text_into(&mut out, &t, linkify, is_member);
                }
            }
            Event::Code(t) => {
                out.push_str("<code>");
                escape_into(&mut out, &t);
                out.push_str("</code>");
            }
            // Raw HTML is shown as the text it is.
            Event::Html(t) | Event::InlineHtml(t) => escape_into(&mut out, &t),
            Event::SoftBreak => out.push('\n'),
            Event::HardBreak => out.push_str("<br>"),
            Event::Rule => out.push_str("<hr>"),
            // Not enabled; kept as text should that change.
            Event::FootnoteReference(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                escape_into(&mut out, &t);
            }
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
        }
    }
    out
}

/// The usernames a message mentions (`@name`), each once (ignoring ASCII case), in order of
/// first mention, at most [`MAX_MENTIONS`]. Mentions inside code, links and images do not count.
pub fn mentions(text: &MessageText) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut in_code_block = false;
    let mut nested = 0usize; // inside links or images
    for event in Parser::new_ext(text.as_str(), options()) {
        match event {
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Start(Tag::Link { .. } | Tag::Image { .. }) => nested += 1,
            Event::End(TagEnd::Link | TagEnd::Image) => nested = nested.saturating_sub(1),
            Event::Text(t) if !in_code_block && nested == 0 => {
                for (a, b) in mention_spans(&t) {
                    let name = &t[a + 1..b];
                    if found.len() < MAX_MENTIONS
                        && !found.iter().any(|f| f.eq_ignore_ascii_case(name))
                    {
                        found.push(name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(s: &str) -> String {
        render_html(&MessageText::parse(s).expect("valid message"))
    }

    #[test]
    fn light_formatting() {
        let table: &[(&str, &str)] = &[
            ("hello", "<p>hello</p>"),
            ("**bold** and *it* and _it_", "<p><strong>bold</strong> and <em>it</em> and <em>it</em></p>"),
            ("~~gone~~", "<p><del>gone</del></p>"),
            ("use `x < y`", "<p>use <code>x &lt; y</code></p>"),
            ("```\nlet a = \"<b>\";\n```", "<pre><code>let a = &quot;&lt;b&gt;&quot;;\n</code></pre>"),
            ("[site](https://example.com/a?b=1&c=2)", "<p><a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"nofollow noopener noreferrer\">site</a></p>"),
            ("see https://example.com/x.", "<p>see <a href=\"https://example.com/x\" rel=\"nofollow noopener noreferrer\">https://example.com/x</a>.</p>"),
            ("(http://example.com)", "<p>(<a href=\"http://example.com/\" rel=\"nofollow noopener noreferrer\">http://example.com</a>)</p>"),
            ("<https://example.com>", "<p><a href=\"https://example.com/\" rel=\"nofollow noopener noreferrer\">https://example.com</a></p>"),
            ("# big", "<p>big</p>"),
            ("> quoted", "<blockquote><p>quoted</p></blockquote>"),
            ("- a\n- b", "<ul><li>a</li><li>b</li></ul>"),
            ("line  \nbreak", "<p>line<br>break</p>"),
            ("a & b", "<p>a &amp; b</p>"),
            ("1 < 2 > 0", "<p>1 &lt; 2 &gt; 0</p>"),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(input, want)| html(input) != *want)
            .map(|(input, want)| format!("{input:?}\n  got  {:?}\n  want {want:?}", html(input)))
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Payloads that must come out inert: no tag but the allow-listed ones, no attribute but a
    /// checked `href`, no `javascript:` anywhere in an attribute.
    #[test]
    fn xss_payloads_are_inert() {
        let table: &[(&str, &str)] = &[
            ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
            ("hi <img src=x onerror=alert(1)>", "<p>hi &lt;img src=x onerror=alert(1)&gt;</p>"),
            ("<svg/onload=alert(1)>", "<p>&lt;svg/onload=alert(1)&gt;</p>"),
            ("<a href=\"javascript:alert(1)\">x</a>", "<p>&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;</p>"),
            ("[click](javascript:alert(1))", "<p>click</p>"),
            ("[click](JaVaScRiPt:alert(1))", "<p>click</p>"),
            ("[click](javascript&#58;alert(1))", "<p>click</p>"),
            ("[click](&#106;avascript:alert(1))", "<p>click</p>"),
            ("[click](java\\script:alert(1))", "<p>click</p>"),
            ("[click]( javascript:alert(1))", "<p>click</p>"),
            ("[click](data:text/html;base64,PHNjcmlwdD4=)", "<p>click</p>"),
            ("[click](vbscript:msgbox)", "<p>click</p>"),
            ("[click](//evil.example/x)", "<p>click</p>"),
            ("[click](/relative)", "<p>click</p>"),
            ("<javascript:alert(1)>", "<p>javascript:alert(1)</p>"),
            ("![x](https://example.com/a.png\" onerror=\"alert(1))", "<p>![x](<a href=\"https://example.com/a.png\" rel=\"nofollow noopener noreferrer\">https://example.com/a.png</a>&quot; onerror=&quot;alert(1))</p>"),
            ("![pic](javascript:alert(1))", "<p>pic</p>"),
            ("[x](https://example.com/\"onmouseover=\"alert(1))", "<p><a href=\"https://example.com/%22onmouseover=%22alert(1)\" rel=\"nofollow noopener noreferrer\">x</a></p>"),
            ("[x](https://a.example \"title\" onclick=\"alert(1)\")", "<p>[x](<a href=\"https://a.example/\" rel=\"nofollow noopener noreferrer\">https://a.example</a> &quot;title&quot; onclick=&quot;alert(1)&quot;)</p>"),
            ("&lt;script&gt;", "<p>&lt;script&gt;</p>"),
            ("&#60;script&#62;alert(1)&#60;/script&#62;", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
            ("&amp;lt;b&amp;gt;", "<p>&amp;lt;b&amp;gt;</p>"),
            ("`<script>`", "<p><code>&lt;script&gt;</code></p>"),
            ("<div>\n<script>alert(1)</script>\n</div>", "<p>&lt;div&gt;\n&lt;script&gt;alert(1)&lt;/script&gt;\n&lt;/div&gt;</p>"),
            ("<!-- comment --><b>x</b>", "<p>&lt;!-- comment --&gt;&lt;b&gt;x&lt;/b&gt;</p>"),
            ("javascript:alert(1)", "<p>javascript:alert(1)</p>"),
            ("https://x.example/\"><script>", "<p><a href=\"https://x.example/\" rel=\"nofollow noopener noreferrer\">https://x.example/</a>&quot;&gt;&lt;script&gt;</p>"),
            ("[a](https://ok.example)[b]: javascript:alert(1)", "<p><a href=\"https://ok.example/\" rel=\"nofollow noopener noreferrer\">a</a>[b]: javascript:alert(1)</p>"),
            ("[ref]\n\n[ref]: javascript:alert(1)", "<p>ref</p>"),
            ("[**x**](https://e.example \"<t>\")", "<p><a href=\"https://e.example/\" rel=\"nofollow noopener noreferrer\"><strong>x</strong></a></p>"),
            ("[[x](javascript:1)](https://e.example)", "<p>[x](<a href=\"https://e.example/\" rel=\"nofollow noopener noreferrer\">https://e.example</a>)</p>"),
        ];
        let mut wrong = Vec::new();
        for (input, want) in table {
            let out = html(input);
            assert_inert(&out);
            if out != *want {
                wrong.push(format!("{input:?}\n  got  {out:?}\n  want {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// Every tag in `out` is one we write, and the only attributes are our own.
    fn assert_inert(out: &str) {
        const TAGS: &[&str] = &[
            "p",
            "/p",
            "strong",
            "/strong",
            "em",
            "/em",
            "del",
            "/del",
            "code",
            "/code",
            "pre",
            "/pre",
            "blockquote",
            "/blockquote",
            "ul",
            "/ul",
            "ol",
            "/ol",
            "li",
            "/li",
            "br",
            "hr",
            "/a",
            "/span",
        ];
        let mut rest = out;
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').expect("every tag closes") + open;
            let tag = &rest[open + 1..close];
            let known = TAGS.contains(&tag)
                || tag == "span class=\"mention\""
                || (tag.starts_with("a href=\"http")
                    && tag.ends_with("\" rel=\"nofollow noopener noreferrer\"")
                    && !tag["a href=\"".len()..tag.len() - 36].contains('"'));
            assert!(known, "unexpected tag <{tag}> in {out:?}");
            rest = &rest[close + 1..];
        }
        assert!(
            !out.to_ascii_lowercase().contains("href=\"javascript"),
            "{out}"
        );
    }

    #[test]
    fn generated_inputs_never_produce_unknown_tags() {
        // Pieces of markup combined into every pair and triple.
        let pieces = [
            "<",
            ">",
            "\"",
            "'",
            "&",
            "&#",
            "x;",
            "[",
            "]",
            "(",
            ")",
            "javascript:",
            "https://e.x/",
            "*",
            "_",
            "`",
            "![",
            "<script>",
            "\n",
            "\n\n",
            "    ",
            "> ",
            "- ",
            "@ana",
            "\\",
            "&lt;",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let input = format!("x{a}{b}{c}y");
                    if let Ok(text) = MessageText::parse(&input) {
                        assert_inert(&render_html_with(&text, &|_| true));
                    }
                }
            }
        }
    }

    #[test]
    fn mentions_are_found_and_marked() {
        let text = MessageText::parse(
            "@ana and @Bo, mail ana@example.com; `@code` @ana again @ANA, [@link](https://e.x) @cy.",
        )
        .expect("valid");
        assert_eq!(mentions(&text), vec!["ana", "Bo", "cy"]);
        let out = render_html_with(&text, &|name| name == "ana" || name == "cy");
        assert!(
            out.starts_with(
                "<p><span class=\"mention\">@ana</span> and @Bo, mail ana@example.com;"
            ),
            "{out}"
        );
        assert!(out.contains("<code>@code</code>"), "{out}");
        assert!(
            out.ends_with("<span class=\"mention\">@cy</span>.</p>"),
            "{out}"
        );
        let code_block = MessageText::parse("```\n@ana\n```").expect("valid");
        assert!(mentions(&code_block).is_empty());
        let many: String = (0..80).map(|i| format!("@u{i} ")).collect();
        assert_eq!(
            mentions(&MessageText::parse(&many).expect("valid")).len(),
            MAX_MENTIONS
        );
    }
}

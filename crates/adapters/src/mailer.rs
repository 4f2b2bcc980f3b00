//! [`Mailer`] on SES v2, as a raw MIME message: the only form in which SES
//! sends attachments (a `Simple` message has none).
//!
//! The message is `multipart/mixed`: a `multipart/alternative` of the plain
//! text and the HTML, then each attachment, every part base64-encoded so no
//! line is too long and no content can end a part early. Headers take only
//! what has been checked: addresses without anything that could start a
//! new header or add a recipient, the subject encoded (RFC 2047).

use std::fmt::Write as _;

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use break_glass_core::ports::{Email, Mailer, PortError, PortErrorKind};

use crate::error::classify;

#[derive(Debug, Clone)]
pub struct Ses {
    client: Client,
}

impl Ses {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(sdk))
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn invalid(message: impl Into<String>) -> PortError {
    PortError::new(PortErrorKind::Invalid, "ses", "SendEmail", message)
}

/// An address fit for a header: one mailbox, nothing that ends a header
/// line or separates recipients.
fn address(a: &str) -> Result<&str, PortError> {
    let ok = a
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>,;:\"()[]\\".contains(c));
    if ok {
        Ok(a)
    } else {
        Err(invalid(format!("{a:?} is not a plain e-mail address")))
    }
}

/// `=?UTF-8?B?…?=` words of at most 39 input bytes each (52 encoded), on
/// character boundaries, folded onto continuation lines.
fn encoded_header(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in clean.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(&chunk)));
    }
    words.join("\r\n ")
}

/// Base64 in lines of 76 characters.
fn base64_lines(out: &mut String, data: &[u8]) {
    // 57 input bytes make one 76-character line.
    for chunk in data.chunks(57) {
        STANDARD.encode_string(chunk, out);
        out.push_str("\r\n");
    }
}

/// A file name safe in a quoted header parameter.
fn filename(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    if clean.is_empty() {
        "attachment".into()
    } else {
        clean
    }
}

fn content_type(t: &str) -> Result<&str, PortError> {
    let ok = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_alphanumeric() || "/.+-".contains(c))
        && t.contains('/');
    if ok {
        Ok(t)
    } else {
        Err(invalid(format!("{t:?} is not a content type")))
    }
}

/// The whole message, headers and body, as SES `Raw` data wants it.
pub fn mime(email: &Email) -> Result<String, PortError> {
    let from = address(&email.from)?;
    let to = email
        .to
        .iter()
        .map(|a| address(a))
        .collect::<Result<Vec<_>, _>>()?;
    if to.is_empty() {
        return Err(invalid("no recipients"));
    }
    // Base64 never contains '=' followed by '_', so these cannot occur
    // inside any part.
    let mixed = "=_break-glass-mixed_=";
    let alternative = "=_break-glass-alternative_=";
    let size: usize =
        email.text.len() + email.html.len() + email.attachments.iter().map(|a| a.data.len()).sum::<usize>();
    let mut out = String::with_capacity(size / 3 * 4 + size / 38 + 4096);
    let _ = write!(
        out,
        "From: {from}\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\n",
        to.join(",\r\n "),
        encoded_header(&email.subject)
    );
    let with_files = !email.attachments.is_empty();
    if with_files {
        let _ = write!(
            out,
            "Content-Type: multipart/mixed; boundary=\"{mixed}\"\r\n\r\n--{mixed}\r\n"
        );
    }
    let _ = write!(
        out,
        "Content-Type: multipart/alternative; boundary=\"{alternative}\"\r\n\r\n"
    );
    for (kind, body) in [("plain", &email.text), ("html", &email.html)] {
        let _ = write!(
            out,
            "--{alternative}\r\nContent-Type: text/{kind}; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        );
        base64_lines(&mut out, body.as_bytes());
    }
    let _ = write!(out, "--{alternative}--\r\n");
    if with_files {
        for file in &email.attachments {
            let name = filename(&file.filename);
            let _ = write!(
                out,
                "--{mixed}\r\nContent-Type: {}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n",
                content_type(&file.content_type)?
            );
            base64_lines(&mut out, &file.data);
        }
        let _ = write!(out, "--{mixed}--\r\n");
    }
    Ok(out)
}

#[async_trait]
impl Mailer for Ses {
    async fn send(&self, email: &Email) -> Result<String, PortError> {
        let raw = RawMessage::builder()
            .data(Blob::new(mime(email)?.into_bytes()))
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.clone()))
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(|e| classify("ses", "SendEmail", e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use break_glass_core::ports::Attachment;

    use super::*;

    fn email() -> Email {
        Email {
            from: "break-glass@example.com".into(),
            to: vec!["security@example.com".into(), "alice@example.com".into()],
            subject: "Break glass report: 2 high-risk actions · ünïcode and a long tail to fold over lines"
                .into(),
            text: "plain".into(),
            html: "<p>html</p>".into(),
            attachments: vec![Attachment {
                filename: "../events\r\n.csv".into(),
                content_type: "text/csv".into(),
                data: b"a,b\r\n1,2\r\n".to_vec(),
            }],
        }
    }

    #[test]
    fn the_message_is_multipart_with_every_part_encoded() {
        let m = mime(&email()).unwrap();
        let (headers, body) = m.split_once("\r\n\r\n").unwrap();
        assert!(headers.starts_with(
            "From: break-glass@example.com\r\nTo: security@example.com,\r\n alice@example.com\r\n"
        ));
        assert!(headers.contains("Subject: =?UTF-8?B?"));
        assert!(headers.contains("Content-Type: multipart/mixed"));
        assert!(body.contains("Content-Type: multipart/alternative"));
        assert!(body.contains("Content-Type: text/plain; charset=UTF-8"));
        assert!(body.contains("Content-Type: text/html; charset=UTF-8"));
        assert!(body.contains("Content-Disposition: attachment; filename=\"..events.csv\""));
        assert!(body.contains(&STANDARD.encode(b"a,b\r\n1,2\r\n")));
        assert!(
            m.lines().all(|l| l.len() <= 78),
            "every line short enough for SMTP"
        );
        // The subject decodes back to what was given.
        let subject: String = headers
            .split("Subject: ")
            .nth(1)
            .unwrap()
            .split("\r\nMIME")
            .next()
            .unwrap()
            .split("\r\n ")
            .map(|w| {
                let b64 = w.trim_start_matches("=?UTF-8?B?").trim_end_matches("?=");
                String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(subject, email().subject);
    }

    #[test]
    fn headers_take_nothing_that_could_add_a_header_or_a_recipient() {
        for bad in [
            "a@example.com\r\nBcc: x@evil.com",
            "a@example.com, b@evil.com",
            "<a@example.com>",
            "nobody",
        ] {
            let mut e = email();
            e.to = vec![bad.into()];
            assert!(mime(&e).is_err(), "{bad:?}");
        }
        let mut e = email();
        e.subject = "x\r\nBcc: x@evil.com".into();
        assert!(!mime(&e).unwrap().contains("\r\nBcc"));
        e.attachments[0].content_type = "text/csv\r\nX: y".into();
        assert!(mime(&e).is_err());
    }
}

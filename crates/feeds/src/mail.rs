//! E-mail messages (RFC 5322 and MIME, through mail-parser): what incident intake needs of one.

use mail_parser::{MessageParser, MimeHeaders};

/// A message read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Its Message-ID, without angle brackets; `None` when it has none.
    pub id: Option<String>,
    /// The sender's address, if it has one.
    pub sender: Option<String>,
    pub subject: String,
    /// The Date header in RFC 3339.
    pub date: Option<String>,
    /// The text of its first text part, with LF line ends.
    pub text: String,
    /// Its attachments: name (`attachment` when it has none), declared media type, data.
    pub attachments: Vec<(String, Option<String>, Vec<u8>)>,
    /// The Message-IDs it answers: In-Reply-To, then References.
    pub answers: Vec<String>,
}

/// Reads a message: an error when the bytes are not e-mail (no From and no Subject header).
pub fn parse(bytes: &[u8]) -> Result<Mail, String> {
    let message = MessageParser::default().parse(bytes).filter(|m| m.from().is_some() || m.subject().is_some());
    let Some(message) = message else { return Err("not an e-mail message: no From or Subject header".to_owned()) };
    let attachments = message
        .attachments()
        .map(|part| {
            let name = part.attachment_name().unwrap_or("attachment").to_owned();
            let declared = part.content_type().map(|t| match t.subtype() {
                Some(sub) => format!("{}/{sub}", t.ctype()),
                None => t.ctype().to_owned(),
            });
            (name, declared, part.contents().to_vec())
        })
        .collect();
    let answers = [message.in_reply_to(), message.references()]
        .into_iter()
        .filter_map(|h| h.as_text_list())
        .flatten()
        .map(|id| id.to_string())
        .collect();
    Ok(Mail {
        id: message.message_id().map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned),
        sender: message.from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned),
        subject: message.subject().unwrap_or_default().trim().to_owned(),
        date: message.date().map(|d| d.to_rfc3339()),
        text: message.body_text(0).unwrap_or_default().replace("\r\n", "\n"),
        attachments,
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_gives_its_headers_text_and_attachments() {
        let raw = "From: SOC <soc@a.example>\r\nSubject: Re: [CERT #INC-4] x\r\nMessage-ID: <m1@a.example>\r\n\
                   In-Reply-To: <INC-4.2@cert.example>\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                   Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
                   Done.\r\n--b\r\nContent-Type: text/csv; name=\"ips.csv\"\r\nContent-Disposition: attachment; \
                   filename=\"ips.csv\"\r\n\r\n192.0.2.1\r\n--b--\r\n";
        let m = parse(raw.as_bytes()).unwrap();
        assert_eq!(m.id.as_deref(), Some("m1@a.example"));
        assert_eq!(m.sender.as_deref(), Some("soc@a.example"));
        assert_eq!(m.subject, "Re: [CERT #INC-4] x");
        assert_eq!(m.date.as_deref(), Some("2026-11-29T08:00:00Z"));
        assert_eq!(m.text.trim(), "Done.");
        assert_eq!(m.answers, ["INC-4.2@cert.example"]);
        assert_eq!(m.attachments, [("ips.csv".to_owned(), Some("text/csv".to_owned()), b"192.0.2.1".to_vec())]);
        assert!(parse(b"\x00\x01 not mail").is_err());
    }
}

//! Reading back what was sent through moto's SES as a raw MIME message:
//! the envelope moto recorded, and the parts of the message decoded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One raw message moto accepted.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub source: String,
    pub destinations: Vec<String>,
    pub raw: String,
}

/// Every raw message moto's SES has accepted (`/moto-api/data.json`,
/// `ses` → `RawMessage`).
pub async fn sent_raw(endpoint: &str) -> Vec<SentMail> {
    let data: serde_json::Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["RawMessage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| SentMail {
            source: m["source"].as_str().unwrap_or_default().to_string(),
            destinations: m["destinations"]
                .as_array()
                .map(|d| d.iter().filter_map(|a| a.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            raw: m["raw_data"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// A decoded part of a message.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: String,
    pub body: Vec<u8>,
}

impl Part {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl SentMail {
    /// The `Subject` header, its RFC 2047 words decoded.
    pub fn subject(&self) -> String {
        let headers = self.raw.split("\r\n\r\n").next().unwrap_or_default();
        let Some(start) = headers.find("Subject: ") else {
            return String::new();
        };
        let mut value = String::new();
        for (i, line) in headers[start + 9..].split("\r\n").enumerate() {
            if i > 0 && !line.starts_with(' ') {
                break;
            }
            value.push_str(line.trim());
        }
        value
            .split("=?UTF-8?B?")
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8(STANDARD.decode(w.trim_end_matches("?=")).unwrap()).unwrap())
            .collect()
    }

    /// Every leaf part (not the multipart containers), bodies decoded.
    pub fn parts(&self) -> Vec<Part> {
        self.raw
            .split("\r\n--=_break-glass-")
            .skip(1)
            .filter_map(|chunk| {
                let (_, rest) = chunk.split_once("\r\n")?;
                let (headers, body) = rest.split_once("\r\n\r\n")?;
                if headers.contains("multipart/") || !headers.contains("Content-Type") {
                    return None;
                }
                let encoded: String = body.lines().map(str::trim).collect();
                Some(Part {
                    headers: headers.to_string(),
                    body: STANDARD.decode(encoded).unwrap(),
                })
            })
            .collect()
    }

    /// The first part whose headers contain `needle` (`text/html`, a file name).
    pub fn part(&self, needle: &str) -> Option<Part> {
        self.parts().into_iter().find(|p| p.headers.contains(needle))
    }
}

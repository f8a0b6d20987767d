//! Credentials in a URI: which options hold them ([`is_secret_name`]), their
//! percent-decoding, and the URI shown without them ([`redact`]).

use url::Url;

/// Query option names whose values are credentials.
pub(super) fn is_secret_name(k: &str) -> bool {
    let k = k.to_lowercase();
    [
        "key",
        "secret",
        "token",
        "password",
        "sas",
        "sig",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

pub(super) fn decode(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The URI with user, password and any secret-looking query value removed, written
/// as a person would (no percent-encoding of the query).
pub(super) fn redact(url: &Url) -> String {
    let mut out = format!("{}://", url.scheme());
    if let Some(h) = url.host_str() {
        out.push_str(h);
    }
    if let Some(p) = url.port() {
        out.push_str(&format!(":{p}"));
    }
    out.push_str(url.path());
    let pairs: Vec<String> = url
        .query_pairs()
        .map(|(k, v)| {
            if is_secret_name(&k) {
                return format!("{k}=***");
            }
            // An endpoint with a user and password in it: shown without them.
            match Url::parse(&v) {
                Ok(mut inner) if !inner.username().is_empty() || inner.password().is_some() => {
                    let _ = inner.set_username("");
                    let _ = inner.set_password(None);
                    format!("{k}={}", inner.as_str().trim_end_matches('/'))
                }
                _ => format!("{k}={v}"),
            }
        })
        .collect();
    if !pairs.is_empty() {
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

//! One secret redactor. Secrets are registered where shipdeck reads them
//! (a `token_env` variable, the credentials of a URL in the config); every
//! text that leaves a backend goes through [`redact`] before anyone shows,
//! logs, prints or stores it.

use std::sync::RwLock;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Secrets shorter than this are not registered: replacing every "a" of a
/// message would destroy it, and a one- or two-character token protects
/// nothing anyway.
const MIN_LEN: usize = 3;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remember `secret` (and the forms it travels in: Basic credentials are
/// base64 in a header) so that [`redact`] hides it from now on.
pub fn register_secret(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_LEN {
        return;
    }
    add(secret.to_string());
}

/// Register the user info of a URL (`scheme://user:password@host/…`): the
/// password, `user:password` and its base64 form (an `Authorization: Basic`
/// header echoed back), raw and percent-decoded.
pub fn register_url_credentials(url: &str) {
    let Some((_, rest)) = url.split_once("://") else {
        return;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return;
    };
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    for (u, p) in [
        (user.to_string(), pass.to_string()),
        (percent_decode(user), percent_decode(pass)),
    ] {
        if p.is_empty() {
            // A user name alone is a token for some services (GitHub's
            // https://TOKEN@github.com).
            register_secret(&u);
            continue;
        }
        register_secret(&p);
        let pair = format!("{u}:{p}");
        register_secret(&pair);
        register_secret(&base64(pair.as_bytes()));
    }
}

/// [`register_url_credentials`] for a URL whose user name is no secret (a
/// database's: `postgres://shipdeck@db/shipdeck` names its store by it):
/// only a password in it is registered.
pub fn register_url_password(url: &str) {
    let Some((_, rest)) = url.split_once("://") else {
        return;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, pass)| !pass.is_empty())
    {
        register_url_credentials(url);
    }
}

fn add(secret: String) {
    let mut all = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    if !all.contains(&secret) {
        all.push(secret);
        // Longest first, so that "user:pass" goes before "pass".
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> String {
    let all = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for s in all.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(T[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_tokens_are_redacted_everywhere_in_a_text() {
        register_secret("tok-7f3a9c-redact-test");
        assert_eq!(
            redact("bad token tok-7f3a9c-redact-test; again tok-7f3a9c-redact-test"),
            "bad token [redacted]; again [redacted]"
        );
        // Too short to be a secret worth mangling messages for.
        register_secret("ab");
        assert_eq!(redact("a tab"), "a tab");
    }

    #[test]
    fn url_credentials_are_redacted_raw_decoded_and_as_basic_auth() {
        register_url_credentials("https://bot:p%40ss-redact-test@ci.example/job?x=1");
        let basic = base64(b"bot:p@ss-redact-test");
        let text =
            format!("echo p%40ss-redact-test p@ss-redact-test bot:p@ss-redact-test Basic {basic}");
        let r = redact(&text);
        assert!(!r.contains("ss-redact-test") && !r.contains(&basic), "{r}");
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}

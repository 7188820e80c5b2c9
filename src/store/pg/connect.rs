//! Where a PostgreSQL store lives and how to reach it: the `[store] url`,
//! the password (`password_env`, `$PGPASSWORD`, `~/.pgpass`), `sslmode`
//! and the TLS connector (rustls). Nothing here ever puts the password in
//! a message: errors name the store as `postgres://user@host:port/db`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::{Host, SslMode};

use crate::store::StoreError;

/// How long a connection attempt may take before the store is called unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the whole connection may take, the server's answer to the
/// startup (TLS, authentication, settings) included: the socket's timeout
/// above ends once the server accepts, and a server that accepts and then
/// says nothing would otherwise be waited for forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

/// Once connected, how long the link may be silent before the client
/// asks the server whether it is still there (TCP keepalive), how often it
/// asks again and how many unanswered asks make the peer dead:
/// 6 + 3 x 3 = 15 s. Without these a dropped network (a cable, a VPN, a
/// server host that vanished) blocks a store call until the kernel's
/// default of two hours and more.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(6);
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(3);
const KEEPALIVES_RETRIES: u32 = 3;
/// How long data the client sent may stay unacknowledged before the
/// connection is given up (Linux TCP_USER_TIMEOUT): bounds a call whose
/// request went out into a dead link, which keepalives do not (they probe
/// only an idle link).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(15);

/// The URL's query keys (`?keepalives_idle=30&...`), for "the user set it".
fn url_keys(url: &str) -> Vec<&str> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .collect()
}

/// Bound a connected store call against a dead peer (see the constants
/// above), each setting only when the URL does not give its own: the
/// user's URL wins, `keepalives=0` included.
fn dead_peer_bounds(config: &mut postgres::Config, url: &str) {
    let keys = url_keys(url);
    let set = |k: &str| keys.contains(&k);
    if !set("keepalives") {
        config.keepalives(true);
    }
    if !set("keepalives_idle") {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    if !set("keepalives_interval") {
        config.keepalives_interval(KEEPALIVES_INTERVAL);
    }
    if !set("keepalives_retries") {
        config.keepalives_retries(KEEPALIVES_RETRIES);
    }
    if !set("tcp_user_timeout") {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
}

/// A connection attempt still waiting for the server's answer.
type Attempt = std::sync::mpsc::Receiver<Result<postgres::Client, postgres::Error>>;

/// A parsed `[store] url` with its password resolved.
#[derive(Clone)]
pub struct PgTarget {
    pub(super) config: postgres::Config,
    /// `postgres://user@host:port/db`: the store's name in every message.
    pub(super) describe: String,
    /// `host:port`, for "cannot reach" messages.
    pub(super) host: String,
    pub(super) tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// The root certificate file the server's certificate is checked
    /// against, if any (named when the check fails).
    pub(super) roots: Option<PathBuf>,
    /// An attempt given up on (its server accepted and never answered),
    /// waited for again by the next one rather than joined by another
    /// thread stuck the same way.
    pending: std::sync::Arc<std::sync::Mutex<Option<Attempt>>>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTarget")
            .field("store", &self.describe)
            .finish_non_exhaustive()
    }
}

/// Where a password came from (for `store` messages and tests; never the value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    Url,
    Env,
    PgPassword,
    PgPass,
    None,
}

impl PgTarget {
    /// Parse `url` (`postgres://user@host:port/db?sslmode=require`) and
    /// find its password: in the URL itself, else the variable named by
    /// `password_env`, else `$PGPASSWORD`, else the first matching line of
    /// `~/.pgpass` (`$PGPASSFILE`), which is read only when no one but its
    /// owner may read it (mode 0600).
    pub fn parse(url: &str, password_env: Option<&str>) -> Result<PgTarget, StoreError> {
        Self::parse_with(url, password_env, &|k| std::env::var(k).ok(), pgpass_path())
            .map(|(t, _)| t)
    }

    /// [`parse`](Self::parse) in the environment `env` gives (a variable's
    /// value by name) rather than this process's: the password variables,
    /// `~/.pgpass` (`$PGPASSFILE`, else under `$HOME`) and the root
    /// certificate (`$PGSSLROOTCERT`, else under `$HOME`) are looked up
    /// there alone.
    pub fn parse_in(
        url: &str,
        password_env: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgTarget, StoreError> {
        let pgpass = env("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
        Self::parse_with(url, password_env, env, pgpass).map(|(t, _)| t)
    }

    pub(crate) fn parse_with(
        url: &str,
        password_env: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        pgpass: Option<PathBuf>,
    ) -> Result<(PgTarget, PasswordSource), StoreError> {
        crate::text::register_url_password(url);
        let shown = crate::backends::show_url_public(url);
        let bad = |cause: String| StoreError::Config {
            store: shown.clone(),
            cause,
        };
        let (mut config, verify_full) = read_url(url).map_err(bad)?;
        let user = config
            .get_user()
            .map(str::to_string)
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .ok_or_else(|| bad("no user: write it in the URL (postgres://USER@host/db)".into()))?;
        config.user(&user);
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => {
                return Err(bad(
                    "no host: write it in the URL (postgres://user@HOST/db)".into(),
                ));
            }
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .map(str::to_string)
            .unwrap_or_else(|| user.clone());
        config.dbname(&db);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        dead_peer_bounds(&mut config, url);
        if config.get_application_name().is_none() {
            config.application_name("shipdeck");
        }
        // shipdeck's statements are short index lookups run every second by
        // every console: JIT compilation (on by default since PostgreSQL 12
        // for statements the planner estimates as costly) would take tens of
        // milliseconds per execution and never pay back. Set at connection
        // start, so it costs no round trip; an `options` in the URL comes after
        // it and so wins.
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("-c jit=off {o}"),
            _ => "-c jit=off".to_string(),
        };
        config.options(&options);
        let source = if config.get_password().is_some() {
            PasswordSource::Url
        } else if let Some(var) = password_env {
            let pw = env(var).ok_or_else(|| {
                bad(format!(
                    "[store] password_env names {var}, which is not set in the environment"
                ))
            })?;
            config.password(pw.as_str());
            PasswordSource::Env
        } else if let Some(pw) = env("PGPASSWORD") {
            config.password(pw.as_str());
            PasswordSource::PgPassword
        } else {
            let pgpass_host = if host.starts_with('/') {
                "localhost".to_string()
            } else {
                host.clone()
            };
            match pgpass.and_then(|p| pgpass_lookup(&p, &pgpass_host, port, &db, &user)) {
                Some(pw) => {
                    config.password(pw.as_str());
                    PasswordSource::PgPass
                }
                None => PasswordSource::None,
            }
        };
        if let Some(pw) = config.get_password() {
            crate::text::register_secret(&String::from_utf8_lossy(pw));
        }
        let describe = format!("postgres://{user}@{host}:{port}/{db}");
        let (tls, roots) = tls_connector(config.get_ssl_mode(), verify_full, env).map_err(|e| {
            StoreError::Config {
                store: describe.clone(),
                cause: e,
            }
        })?;
        Ok((
            PgTarget {
                config,
                describe,
                host: format!("{host}:{port}"),
                tls,
                roots,
                pending: Default::default(),
            },
            source,
        ))
    }

    /// A new session. The error names the store and its host, never the password.
    pub(super) fn connect(&self) -> Result<postgres::Client, StoreError> {
        use std::sync::mpsc::RecvTimeoutError;
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let attempt = match pending.take() {
            Some(a) => a,
            None => {
                let (tx, rx) = std::sync::mpsc::channel();
                let (config, tls) = (self.config.clone(), self.tls.clone());
                std::thread::Builder::new()
                    .name("shipdeck-pg-connect".into())
                    .spawn(move || {
                        let _ = tx.send(config.connect(tls));
                    })
                    .map_err(|e| self.unreachable(&format!("cannot start a connection: {e}")))?;
                rx
            }
        };
        let answer = match attempt.recv_timeout(HANDSHAKE_TIMEOUT) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => {
                *pending = Some(attempt);
                return Err(self.unreachable(&format!(
                    "the server accepted the connection but did not answer its startup within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                )));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.unreachable(&"the connection attempt ended without an answer"));
            }
        };
        answer.map_err(|e| {
            // With its causes: "error performing TLS handshake" alone
            // says nothing a person can act on.
            let text = super::cause(&e);
            match &self.roots {
                // Neither carries a SQLSTATE (the client gave up, not the
                // server), and neither passes by waiting: lasting, said
                // rather than retried as an outage.
                Some(file) if text.contains("invalid peer certificate") => self.unreachable_as(
                    &format!(
                        "{text}: the server's certificate does not verify against the root certificate {}",
                        file.display()
                    ),
                    None,
                    true,
                ),
                // The client library's own words, when no password was found
                // and the server asks for one: say where one is looked for.
                _ if text.contains("password missing") => self.unreachable_as(
                    &format!(
                        "{text}: the server asks for a password and shipdeck found none: set [store] password_env, $PGPASSWORD or a host:port:db:user:password line in ~/.pgpass ($PGPASSFILE), which is read only when chmod 0600"
                    ),
                    None,
                    true,
                ),
                // No server's answer: whatever answered at that address may
                // not be PostgreSQL at all (a web server on the port), which
                // the client's own words ("bytes remaining on stream") do
                // not tell. Asked once, directly, and said — only when a
                // connection was made (never for a refused or timed-out one:
                // a server that is down costs no second try).
                _ if e.as_db_error().is_none() && !text.starts_with("error connecting to server") => match not_postgres(&self.config) {
                    Some(what) => self.unreachable_as(
                        &format!(
                            "{text}: what answers at {} is not a PostgreSQL server ({what}); is the port right?",
                            self.host
                        ),
                        None,
                        true,
                    ),
                    None => self.lost(&e),
                },
                _ => self.lost(&e),
            }
        })
    }

    /// Unreachable, for a reason no server gave (no SQLSTATE).
    pub(super) fn unreachable(&self, e: &dyn std::fmt::Display) -> StoreError {
        self.unreachable_with(e, None)
    }

    /// Unreachable, for the server's answer `sqlstate` when one answered.
    pub(super) fn unreachable_with(
        &self,
        e: &dyn std::fmt::Display,
        sqlstate: Option<crate::store::SqlState>,
    ) -> StoreError {
        self.unreachable_as(e, sqlstate, false)
    }

    /// Unreachable, `lasting` when the client found a cause no waiting
    /// heals (see [`StoreError::heals_by_waiting`]).
    pub(super) fn unreachable_as(
        &self,
        e: &dyn std::fmt::Display,
        sqlstate: Option<crate::store::SqlState>,
        lasting: bool,
    ) -> StoreError {
        StoreError::Unreachable {
            store: self.describe.clone(),
            host: self.host.clone(),
            cause: crate::text::redact(&e.to_string()),
            sqlstate,
            lasting,
        }
    }

    /// A session that could not be had or was lost over `e`: its cause,
    /// with the server's SQLSTATE when the server answered.
    pub(super) fn lost(&self, e: &postgres::Error) -> StoreError {
        self.unreachable_with(&super::cause(e), super::sqlstate(e))
    }
}

/// What answered at `config`'s first TCP address, when it does not answer
/// PostgreSQL's opening (an `SSLRequest`, which every PostgreSQL server
/// answers with one byte, `S` or `N`, or an `E` error message from an old
/// one): a short description of the answer. `None` when it does answer so,
/// or when it could not be asked (then nothing is claimed).
fn not_postgres(config: &postgres::Config) -> Option<String> {
    use std::io::{Read, Write};
    let Some(Host::Tcp(host)) = config.get_hosts().first() else {
        return None;
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let wait = Duration::from_secs(2);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()?
        .next()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, wait).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.set_write_timeout(Some(wait)).ok()?;
    // Length 8, then the SSLRequest code 80877103.
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).ok()?;
    let mut buf = [0u8; 64];
    let n = match s.read(&mut buf) {
        Ok(n) => n,
        // Silent past the wait: nothing to say either way.
        Err(_) => return None,
    };
    match buf[..n].first() {
        // PostgreSQL's answers; closed without a word claims nothing.
        Some(b'S' | b'N' | b'E') | None => None,
        Some(_) => Some(format!("it answered {}", crate::text::excerpt(&buf[..n]))),
    }
}

fn pgpass_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

/// The password of the first `~/.pgpass` line matching host, port, db and
/// user (`*` matches anything; `\:` and `\\` are escapes). A file others
/// may read is ignored, as libpq does, with a warning in the log.
pub(crate) fn pgpass_lookup(
    path: &Path,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "{}: ignored: others may read it (chmod 0600 it, as libpq requires)",
                path.display()
            );
            return None;
        }
    }
    if !meta.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), db, user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let fields = pgpass_fields(l);
            (fields.len() == 5).then_some(fields)
        })
        .find(|f| {
            f.iter()
                .zip(wanted)
                .all(|(pat, val)| pat == "*" || pat == val)
        })
        .map(|mut f| f.remove(4))
}

/// Split one `.pgpass` line on unescaped colons, resolving `\:` and `\\`.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), out.last_mut()) {
                    f.push(n)
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(f) = out.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    out
}

/// Read `url` as the client library does, nothing looked up yet: the
/// scheme, `sslmode` and the rest's syntax. The cause never quotes the URL
/// (it may hold a password). Returns whether `verify-full` was asked.
fn read_url(url: &str) -> Result<(postgres::Config, bool), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("[store] url must start with postgres:// (or postgresql://)".into());
    }
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut verify_full = false;
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        if k != "sslmode" {
            continue;
        }
        match v {
            "disable" | "prefer" | "require" => {}
            "verify-full" => verify_full = true,
            _ => {
                return Err(format!(
                    "sslmode={v} is not supported: use disable, prefer, require or verify-full (with a root certificate in $PGSSLROOTCERT or ~/.postgresql/root.crt, require and verify-full verify the server's certificate and host name)"
                ));
            }
        }
    }
    // The client library knows up to `require`; verify-full is
    // `require` with a root certificate that must be there.
    let parsed = if verify_full {
        url.replace("sslmode=verify-full", "sslmode=require")
    } else {
        url.to_string()
    };
    let config = postgres::Config::from_str(&parsed)
        .map_err(|e| format!("{e} (expected postgres://user@host:port/db)"))?;
    Ok((config, verify_full))
}

impl PgTarget {
    /// Whether `url` is one shipdeck can read (for `config check`): the
    /// cause names what is wrong, never the URL's password.
    pub fn check_url(url: &str) -> Result<(), String> {
        read_url(url).map(|_| ())
    }
}

/// The rustls connector for `sslmode`. As libpq does for `prefer` and
/// `require`, the server's certificate is checked against a root
/// certificate only when one is given (`$PGSSLROOTCERT` or
/// `~/.postgresql/root.crt`, PEM): then the chain and the host name must
/// verify. Without one the connection is encrypted, and the handshake's
/// signatures checked, but the server is not authenticated. `disable`
/// never starts TLS.
///
/// `verify_full` (libpq's `sslmode=verify-full`) insists on the root
/// certificate: without one it is an error, not an unauthenticated link.
fn tls_connector(
    mode: SslMode,
    verify_full: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(tokio_postgres_rustls::MakeRustlsConnect, Option<PathBuf>), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let root_file = env("PGSSLROOTCERT").map(PathBuf::from).or_else(|| {
        env("HOME")
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.is_file())
    });
    if verify_full && root_file.is_none() {
        return Err(
            "sslmode=verify-full needs the root certificate that signed the server's: set $PGSSLROOTCERT to its file or put it in ~/.postgresql/root.crt".into(),
        );
    }
    let roots = root_file.clone().filter(|_| mode != SslMode::Disable);
    let config = match root_file {
        Some(file) if mode != SslMode::Disable => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(&file)
                .map_err(|e| format!("root certificate {}: {e}", file.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("root certificate {}: {e}", file.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("root certificate {}: {e}", file.display()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok((tokio_postgres_rustls::MakeRustlsConnect::new(config), roots))
}

/// libpq's `sslmode=prefer|require` without a root certificate: encrypt,
/// check the handshake's signatures, accept the server's certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn pgpass(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pgpass");
        std::fs::write(&p, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (dir, p)
    }

    fn password(t: &PgTarget) -> Option<String> {
        t.config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    #[test]
    fn a_connection_gets_dead_peer_bounds_unless_the_url_sets_its_own() {
        let none = vars(&[]);
        let url = "postgres://shipdeck:pw@db.internal:5432/shipdeck";
        let (t, _) = PgTarget::parse_with(url, None, &none, None).unwrap();
        let c = &t.config;
        assert!(c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), KEEPALIVES_IDLE);
        assert_eq!(c.get_keepalives_interval(), Some(KEEPALIVES_INTERVAL));
        assert_eq!(c.get_keepalives_retries(), Some(KEEPALIVES_RETRIES));
        assert_eq!(c.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        // A dead peer is noticed within ~15-20 s on an idle link and a busy one.
        let idle = KEEPALIVES_IDLE + KEEPALIVES_INTERVAL * KEEPALIVES_RETRIES;
        assert!(idle >= Duration::from_secs(10) && idle <= Duration::from_secs(20));
        assert!(TCP_USER_TIMEOUT <= Duration::from_secs(20));

        let own = "postgres://shipdeck:pw@db.internal:5432/shipdeck?sslmode=disable\
                   &keepalives_idle=120&keepalives_interval=30&keepalives_retries=9\
                   &tcp_user_timeout=60";
        let (t, _) = PgTarget::parse_with(own, None, &none, None).unwrap();
        let c = &t.config;
        assert!(c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(120));
        assert_eq!(c.get_keepalives_interval(), Some(Duration::from_secs(30)));
        assert_eq!(c.get_keepalives_retries(), Some(9));
        assert_eq!(c.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));

        let off = "postgres://shipdeck:pw@db.internal:5432/shipdeck?keepalives=0";
        let (t, _) = PgTarget::parse_with(off, None, &none, None).unwrap();
        assert!(!t.config.get_keepalives(), "the URL's keepalives=0 wins");
        assert_eq!(t.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
    }

    #[test]
    fn the_password_comes_from_password_env_before_pgpassword_and_pgpass() {
        let (_d, file) = pgpass("*:*:*:*:from-pgpass\n", 0o600);
        let url = "postgres://shipdeck@db.internal:5432/shipdeck";
        let both = vars(&[("TEAM_PW", "from-env"), ("PGPASSWORD", "from-pgpassword")]);
        let (t, src) =
            PgTarget::parse_with(url, Some("TEAM_PW"), &both, Some(file.clone())).unwrap();
        assert_eq!(
            (src, password(&t).as_deref()),
            (PasswordSource::Env, Some("from-env"))
        );
        let (t, src) = PgTarget::parse_with(url, None, &both, Some(file.clone())).unwrap();
        assert_eq!(
            (src, password(&t).as_deref()),
            (PasswordSource::PgPassword, Some("from-pgpassword"))
        );
        let none = vars(&[]);
        let (t, src) = PgTarget::parse_with(url, None, &none, Some(file)).unwrap();
        assert_eq!(
            (src, password(&t).as_deref()),
            (PasswordSource::PgPass, Some("from-pgpass"))
        );
        assert_eq!(t.describe, "postgres://shipdeck@db.internal:5432/shipdeck");
        assert_eq!(t.host, "db.internal:5432");
    }

    #[test]
    fn an_unset_password_env_is_named() {
        let err = PgTarget::parse_with(
            "postgres://shipdeck@db/shipdeck",
            Some("NOPE_PW"),
            &vars(&[]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("NOPE_PW") && err.contains("not set"), "{err}");
    }

    #[test]
    fn pgpass_matches_fields_with_wildcards_and_escapes() {
        let (_d, p) = pgpass(
            "# comment\n\
             other:5432:shipdeck:shipdeck:wrong-host\n\
             db.internal:6543:*:shipdeck:wrong-port\n\
             db.internal:*:ship\\:deck:shipdeck:pa\\:ss\\\\word\n\
             *:*:*:*:fallback\n",
            0o600,
        );
        assert_eq!(
            pgpass_lookup(&p, "db.internal", 5432, "ship:deck", "shipdeck").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            pgpass_lookup(&p, "db.internal", 6543, "x", "shipdeck").as_deref(),
            Some("wrong-port")
        );
        assert_eq!(
            pgpass_lookup(&p, "elsewhere", 1, "x", "y").as_deref(),
            Some("fallback")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_pgpass_others_may_read_is_ignored() {
        let (_d, p) = pgpass("*:*:*:*:secret\n", 0o644);
        assert_eq!(pgpass_lookup(&p, "h", 5432, "d", "u"), None);
    }

    #[test]
    fn sessions_start_with_jit_off_and_the_urls_own_options_after_it() {
        let (t, _) = PgTarget::parse_with("postgres://u@h/d", None, &vars(&[]), None).unwrap();
        assert_eq!(t.config.get_options(), Some("-c jit=off"));
        let url = "postgres://u@h/d?options=-c%20statement_timeout%3D5s%20-c%20jit%3Don";
        let (t, _) = PgTarget::parse_with(url, None, &vars(&[]), None).unwrap();
        assert_eq!(
            t.config.get_options(),
            Some("-c jit=off -c statement_timeout=5s -c jit=on"),
            "the URL's options come last, so they win"
        );
    }

    #[test]
    fn sslmode_is_read_from_the_url_and_a_bad_one_is_refused() {
        let (t, _) =
            PgTarget::parse_with("postgres://u@h/d?sslmode=require", None, &vars(&[]), None)
                .unwrap();
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        let err = PgTarget::parse_with("postgres://u@h/d?sslmode=bogus", None, &vars(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode"), "{err}");
        let err =
            PgTarget::parse_with("postgres://u@h/d?sslmode=verify-ca", None, &vars(&[]), None)
                .unwrap_err()
                .to_string();
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn verify_full_needs_a_root_certificate() {
        let url = "postgres://u@h/d?sslmode=verify-full";
        let err = PgTarget::parse_with(url, None, &vars(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PGSSLROOTCERT") && err.contains("verify-full"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        let m = missing.display().to_string();
        let env = |k: &str| (k == "PGSSLROOTCERT").then(|| m.clone());
        let err = PgTarget::parse_with(url, None, &env, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&m), "{err}");
    }

    #[test]
    fn a_password_in_the_url_never_shows_in_the_store_name() {
        let (t, src) =
            PgTarget::parse_with("postgres://u:hunter2@h:5433/d", None, &vars(&[]), None).unwrap();
        assert_eq!(src, PasswordSource::Url);
        assert!(!t.describe.contains("hunter2"));
        let e = t
            .unreachable(&"password authentication failed for hunter2")
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("h:5433"), "{e}");
    }
}

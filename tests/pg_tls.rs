//! The team store over TLS, against a throwaway cluster serving a
//! certificate from an authority made here with openssl: `sslmode=require`
//! encrypts (the server says so), `verify-full` connects with the right
//! root certificate and refuses, with a clear message, a server whose
//! certificate another authority signed.
//!
//! Needs PostgreSQL and openssl (`./scripts/test` installs PostgreSQL;
//! openssl comes with it on Debian).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::Utc;
use common::pg;
use shipdeck::domain::{ActionKind, Outcome};
use shipdeck::store::{NewAudit, PgStore, PgTarget, Store, StoreError};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl not found ({e}): install it (`apt-get install openssl`)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed authority `name` (`name.crt`, `name.key` in `dir`).
fn authority(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-subj",
            &format!("/CN={name}"),
        ],
        dir,
    );
    dir.join(crt)
}

/// A server certificate for 127.0.0.1 signed by authority `ca`: (cert, key).
fn server_cert(dir: &Path, ca: &str) -> (PathBuf, PathBuf) {
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
        dir,
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ],
        dir,
    );
    (dir.join("server.crt"), dir.join("server.key"))
}

/// `shipdeck history` on `url` in a home of its own, with `root` as
/// `$PGSSLROOTCERT`: (exit code, stderr).
fn history(home: &Path, url: &str, root: Option<&Path>) -> (i32, String) {
    let config = home.join("shipdeck.toml");
    std::fs::write(
        &config,
        format!(
            "project = \"tls\"\n[store]\nurl = \"{url}\"\npassword_env = \"TEAM_PW\"\n\n[[environments]]\nname = \"production\"\nversion = {{ url = \"http://127.0.0.1:9/version\" }}\ndeploy = {{ webhook = \"http://127.0.0.1:9/deploy\" }}\n"
        ),
    )
    .unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_shipdeck"));
    c.current_dir(home)
        .env_remove("SHIPDECK_CONFIG")
        .env_remove("PGPASSWORD")
        .env_remove("PGSSLROOTCERT")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("USER", "tls")
        .env("TEAM_PW", pg::PASSWORD)
        .arg("--config")
        .arg(&config)
        .arg("history")
        .stdin(Stdio::null());
    if let Some(r) = root {
        c.env("PGSSLROOTCERT", r);
    }
    let out = c.output().expect("run shipdeck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn require_encrypts_and_verify_full_checks_the_servers_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = authority(dir.path(), "shipdeck-test-ca");
    let other_ca = authority(dir.path(), "someone-else");
    let (crt, key) = server_cert(dir.path(), "shipdeck-test-ca");
    let cluster = pg::Cluster::start();
    cluster.enable_tls(&crt, &key);
    let db = cluster.create_db();

    // require: encrypted, whoever signed the certificate (libpq's rule).
    let url = format!("{}?sslmode=require", cluster.url_with_password(&db));
    let store = PgStore::open(&url, None).expect("sslmode=require connects");
    store
        .audit_start(&NewAudit {
            at: Utc::now(),
            actor: "tls",
            action: ActionKind::Monitor,
            env: "production",
            version: None,
            from_version: None,
            outcome: Outcome::Succeeded,
            detail: "over TLS",
        })
        .unwrap();
    let (sessions, encrypted): (i64, i64) = {
        let r = cluster
            .admin("postgres")
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl)
                 FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
                 WHERE a.datname = $1 AND a.application_name = 'shipdeck'",
                &[&db],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(sessions >= 1, "the store's session is not seen");
    assert_eq!(encrypted, sessions, "a store session without TLS");
    drop(store);

    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let url = format!("{}?sslmode=verify-full", cluster.url(&db));
    // verify-full with the certificate's own authority: connects.
    let (code, err) = history(home, &url, Some(&ca));
    assert_eq!(
        code, 0,
        "verify-full with the right root certificate: {err}"
    );

    // verify-full with another authority's certificate: refused, saying why.
    let (code, err) = history(home, &url, Some(&other_ca));
    assert_eq!(code, 1, "{err}");
    let store_name = format!("postgres://postgres@127.0.0.1:{}/{db}", cluster.port);
    for want in [
        store_name.as_str(),
        "certificate",
        other_ca.to_str().unwrap(),
    ] {
        assert!(err.contains(want), "{want:?} missing from: {err}");
    }
    assert!(!err.contains(pg::PASSWORD), "the password leaked: {err}");

    // verify-full without any root certificate: a config error (exit 2)
    // naming where to put one.
    let (code, err) = history(home, &url, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PGSSLROOTCERT"), "{err}");
}

/// A server certificate that does not verify against the root certificate
/// (`sslmode=verify-full`) is no outage: nothing comes of waiting, so it is
/// lasting (`heals_by_waiting` false: said, not retried with back-off),
/// naming the root certificate — at start, and for a store already
/// running whose server comes back with a certificate another authority
/// signed.
#[test]
fn a_certificate_that_does_not_verify_is_lasting_not_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    std::fs::create_dir_all(&ours).unwrap();
    std::fs::create_dir_all(&theirs).unwrap();
    let ca = authority(&ours, "shipdeck-test-ca");
    authority(&theirs, "someone-else");
    let (good_crt, good_key) = server_cert(&ours, "shipdeck-test-ca");
    let (bad_crt, bad_key) = server_cert(&theirs, "someone-else");
    let cluster = pg::Cluster::start();
    cluster.enable_tls(&good_crt, &good_key);
    let db = cluster.create_db();
    let url = format!("{}?sslmode=verify-full", cluster.url_with_password(&db));
    let root = ca.to_str().unwrap().to_string();
    let env = move |k: &str| (k == "PGSSLROOTCERT").then(|| root.clone());
    let target = || PgTarget::parse_in(&url, None, &env).unwrap();
    let store = PgStore::connect(target()).expect("verify-full with the right root connects");
    assert!(store.verify().unwrap().intact());

    // The server now serves a certificate another authority signed, and
    // the running store's session is cut: reconnecting fails to verify.
    cluster.enable_tls(&bad_crt, &bad_key);
    cluster
        .admin("postgres")
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = $1 AND application_name = 'shipdeck'",
            &[&db],
        )
        .unwrap();
    let lasting = |e: &StoreError| {
        let msg = e.to_string();
        assert!(!e.heals_by_waiting(), "{e:?}");
        assert!(
            msg.contains("certificate") && msg.contains(ca.to_str().unwrap()),
            "{msg}"
        );
        assert!(!msg.contains(pg::PASSWORD), "the password leaked: {msg}");
    };
    // The first call may find its session cut (an outage, for all it can
    // tell); the reconnections after it fail to verify, and say so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = 0;
    while seen < 2 {
        match store.verify() {
            Err(e) if !e.heals_by_waiting() => {
                lasting(&e);
                seen += 1;
            }
            other => assert!(
                std::time::Instant::now() < deadline,
                "no lasting refusal within 30 s: {other:?}"
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(600));
    }
    drop(store);

    // At start, the same.
    let e = PgStore::connect(target()).err().expect("refused");
    assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
    lasting(&e);
}

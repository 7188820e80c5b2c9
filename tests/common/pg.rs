//! A throwaway PostgreSQL cluster for the tests (and the bench): initdb in
//! a temp dir, as a non-root user when the tests run as root (`runuser -u
//! nobody`), on a free port of 127.0.0.1, password (scram) auth over TCP.
//! [`shared`] starts one per test binary; a watchdog holding a pipe from
//! this process stops it and removes its files when the process ends —
//! normally, on a panic, or killed.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The superuser's password (scram over TCP): tests must supply it.
pub const PASSWORD: &str = "harness-Secret-77";
pub const USER: &str = "postgres";

pub struct Cluster {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// Server options beyond the harness's own (`-c name=value ...`),
    /// kept for every start of this cluster.
    options: String,
    /// The watchdog's stdin: when it closes, the cluster stops.
    watchdog: Mutex<Option<(Child, std::process::ChildStdin)>>,
}

/// The cluster of this test binary, started on first use.
pub fn shared() -> &'static Cluster {
    static ONE: OnceLock<Cluster> = OnceLock::new();
    ONE.get_or_init(Cluster::start)
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(b) = found.pop() {
        return b;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("initdb").is_file() && d.join("pg_ctl").is_file() {
                return d;
            }
        }
    }
    panic!(
        "PostgreSQL is not installed: the team-store tests start a throwaway cluster with its initdb and pg_ctl.\n\
         Install it with `sudo apt-get install postgresql` (Debian/Ubuntu), or run scripts/test, which does."
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args…` as the cluster's owner.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// A new cluster of its own (most tests use [`shared`]).
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// A new cluster started with these server settings too (`name=value`
    /// each, as `postgres -c` takes them): the bench's profile mode loads
    /// pg_stat_statements this way, which only a server start can do.
    pub fn start_with(settings: &[&str]) -> Cluster {
        let options: String = settings.iter().map(|s| format!(" -c {s}")).collect();
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("shipdeck-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let data = dir.join("data");
        std::fs::write(dir.join("pw"), PASSWORD).expect("password file");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "nobody"]).arg(&dir);
                    c
                },
                "chown the cluster dir",
            );
        }
        let mut init = as_owner(&bin.join("initdb"));
        init.arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", dir.join("pw").display()));
        run(init, "initdb");
        // A free port is only free until someone binds it: another test
        // binary (or anything on the machine) may take it before the
        // server does. Then try another.
        let mut c = Cluster {
            port: 0,
            dir,
            bin,
            options,
            watchdog: Mutex::new(None),
        };
        let mut tries = 0;
        loop {
            c.port = free_port();
            tries += 1;
            match c.try_pg_ctl_start() {
                Ok(()) => break,
                Err(e) if tries < 5 && c.log().contains("could not bind") => {
                    eprintln!("port {} was taken meanwhile, another one: {e}", c.port);
                }
                Err(e) => panic!("pg_ctl start failed: {e}\n{}", c.log()),
            }
        }
        // The watchdog: stops the cluster and removes its files when this
        // process's end of the pipe closes, however the process ends.
        let mut w = as_owner(Path::new("/bin/sh"));
        w.arg("-c")
            .arg("read _; \"$1\" -D \"$2\" -m immediate stop >/dev/null 2>&1; rm -rf \"$3\"")
            .arg("sh")
            .arg(c.bin.join("pg_ctl"))
            .arg(&data)
            .arg(&c.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = w.spawn().expect("cluster watchdog");
        let stdin = child.stdin.take().expect("watchdog stdin");
        *c.watchdog.lock().unwrap() = Some((child, stdin));
        c
    }

    fn pg_ctl_start(&self) {
        if let Err(e) = self.try_pg_ctl_start() {
            panic!("pg_ctl start failed: {e}\n{}", self.log());
        }
    }

    fn try_pg_ctl_start(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let mut start = as_owner(&self.bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=300{}",
                self.port,
                self.dir.display(),
                self.options
            ))
            .args(["-w", "-t", "60", "start"]);
        let out = start.output().map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// Stop the server (fast shutdown: sessions are cut), keeping its data.
    pub fn stop(&self) {
        let mut c = as_owner(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]);
        run(c, "pg_ctl stop");
    }

    /// Start it again after [`Cluster::stop`], on the same port.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// `postgres://postgres@127.0.0.1:PORT/db`, without the password.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The same with the password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// The same over the cluster's Unix socket (`host=` its directory).
    #[allow(dead_code)]
    pub fn socket_url_with_password(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@/{db}?host={}&port={}",
            self.dir.display(),
            self.port
        )
    }

    pub fn admin(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url_with_password(db), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test cluster: {e}"))
    }

    /// A fresh, empty database; returns its name.
    pub fn create_db(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sd_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        name
    }

    /// Serve TLS from now on with `cert` and `key` (PEM): copied into the
    /// cluster's directory, owned by the server's user, `ssl = on`, and the
    /// configuration reloaded; returns once a new session reports it.
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        let (c, k) = (self.dir.join("server.crt"), self.dir.join("server.key"));
        std::fs::copy(cert, &c).expect("copy the certificate");
        std::fs::copy(key, &k).expect("copy the key");
        if is_root() {
            run(
                {
                    let mut ch = Command::new("chown");
                    ch.arg("nobody").arg(&c).arg(&k);
                    ch
                },
                "chown the certificate",
            );
        }
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600))
                .expect("chmod the key");
        }
        let mut admin = self.admin("postgres");
        for sql in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", c.display()),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", k.display()),
            "ALTER SYSTEM SET ssl = on".to_string(),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            admin
                .batch_execute(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}\n{}", self.log()));
        }
        let started = std::time::Instant::now();
        loop {
            let on: String = self
                .admin("postgres")
                .query_one("SHOW ssl", &[])
                .expect("SHOW ssl")
                .get(0);
            if on == "on" {
                return;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the server did not turn ssl on:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some((mut child, mut stdin)) = self.watchdog.lock().unwrap().take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

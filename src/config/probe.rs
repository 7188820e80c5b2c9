//! The second, lenient read of a config file that keeps the places of values
//! with limits (durations, rates, printable text), so a value out of range
//! is reported at its line and column.

use super::*;

/// The places of the values [`Probe::validate`] checks: the same file read
/// a second time, leniently (unknown keys are the typed parse's business).
#[derive(Deserialize, Default)]
pub(super) struct Probe {
    project: Option<Spanned<String>>,
    #[serde(default)]
    identity: IdentityProbe,
    #[serde(default)]
    metrics: MetricsProbe,
    #[serde(default)]
    monitor: MonitorProbe,
    #[serde(default)]
    ui: UiProbe,
    #[serde(default)]
    environments: Vec<EnvProbe>,
    #[serde(default)]
    release: release::ReleaseProbe,
    #[serde(default)]
    store: StoreProbe,
}

#[derive(Deserialize, Default)]
struct StoreProbe {
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    password_env: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
struct IdentityProbe {
    name: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
struct MetricsProbe {
    url: Option<Spanned<String>>,
    step: Option<Spanned<Written>>,
    timeout: Option<Spanned<Written>>,
    token_env: Option<Spanned<String>>,
    #[serde(default)]
    queries: QueriesProbe,
}

#[derive(Deserialize, Default)]
struct QueriesProbe {
    requests: Option<Spanned<String>>,
    errors: Option<Spanned<String>>,
    latency: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
struct MonitorProbe {
    window: Option<Spanned<Written>>,
    baseline: Option<Spanned<Written>>,
    max_error_rate: Option<Spanned<f64>>,
    max_p50_ms: Option<Spanned<f64>>,
    max_p95_ms: Option<Spanned<f64>>,
    max_p99_ms: Option<Spanned<f64>>,
}

#[derive(Deserialize, Default)]
struct UiProbe {
    refresh: Option<Spanned<Written>>,
}

#[derive(Deserialize)]
struct EnvProbe {
    #[serde(default)]
    version: SourceProbe,
    #[serde(default)]
    deploy: SourceProbe,
    metrics_label: Option<Spanned<String>>,
    restore_command: Option<Spanned<String>>,
    name: Option<String>,
    #[serde(default)]
    gates: release::GatesProbe,
}

#[derive(Deserialize, Default)]
struct SourceProbe {
    url: Option<Spanned<String>>,
    webhook: Option<Spanned<String>>,
    command: Option<Vec<Spanned<String>>>,
    timeout: Option<Spanned<Written>>,
    poll: Option<Spanned<Written>>,
    token_env: Option<Spanned<String>>,
}

/// A duration as the user wrote it ("1d") beside what it means: an error
/// quotes their text, not the value rewritten ("24h").
pub(super) struct Written {
    pub(super) d: HumanDuration,
    pub(super) text: String,
}

impl<'de> Deserialize<'de> for Written {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let d = HumanDuration::parse(&text).map_err(serde::de::Error::custom)?;
        Ok(Written { d, text })
    }
}

/// A text shown to people must not carry control characters or escape
/// sequences: refuse it here, with its place, rather than clean it later.
fn printable(what: &str, v: &Option<Spanned<String>>) -> Result<(), Problem> {
    match v {
        Some(v) if crate::text::has_control(v.get_ref()) => Err((
            Some(v.span()),
            format!(
                "{what} {:?} contains control characters or escape sequences; use printable text",
                v.get_ref()
            ),
        )),
        _ => Ok(()),
    }
}

fn at_most(
    what: &str,
    v: &Option<Spanned<Written>>,
    limit: std::time::Duration,
) -> Result<(), Problem> {
    match v {
        Some(d) if d.get_ref().d.0 > limit => Err((
            Some(d.span()),
            format!(
                "{what} = {:?} is too long: at most {}",
                d.get_ref().text,
                HumanDuration(limit)
            ),
        )),
        _ => Ok(()),
    }
}

/// A duration that must be at least `min` (above zero when `min` is
/// zero): a zero timeout fails every call, a zero poll spins.
fn at_least(
    what: &str,
    v: &Option<Spanned<Written>>,
    min: std::time::Duration,
) -> Result<(), Problem> {
    match v {
        Some(d) if d.get_ref().d.0.is_zero() || d.get_ref().d.0 < min => Err((
            Some(d.span()),
            if min.is_zero() {
                format!("{what} = {:?} must be longer than zero", d.get_ref().text)
            } else {
                format!(
                    "{what} = {:?} is too short: at least {}",
                    d.get_ref().text,
                    HumanDuration(min)
                )
            },
        )),
        _ => Ok(()),
    }
}

/// An http(s) URL, checked where it is written rather than at the first
/// call (`config check` passed a metrics url of "not a url").
fn http_url(what: &str, v: &Option<Spanned<String>>) -> Result<(), Problem> {
    match v {
        Some(u)
            if !((u.get_ref().starts_with("http://") || u.get_ref().starts_with("https://"))
                && reqwest::Url::parse(u.get_ref()).is_ok_and(|p| p.has_host())) =>
        {
            Err((
                Some(u.span()),
                format!(
                    "{what} {:?} is not an http:// or https:// URL with a host",
                    u.get_ref()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// The name of an environment variable (letters, digits and `_`), checked
/// where it is written: the variable itself is only read when it is used,
/// so `token_env = ""` or `"A B"` would otherwise pass `config check` and
/// fail, or silently send no token, at run time.
fn env_var_name(what: &str, v: &Option<Spanned<String>>) -> Result<(), Problem> {
    match v {
        Some(n)
            if n.get_ref().is_empty()
                || !n
                    .get_ref()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Err((
                Some(n.span()),
                format!(
                    "{what} {:?} must name an environment variable (letters, digits and _, like METRICS_TOKEN)",
                    n.get_ref()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// A limit in milliseconds: a finite number above zero.
fn positive_ms(what: &str, v: &Option<Spanned<f64>>) -> Result<(), Problem> {
    match v {
        Some(x) if !(x.get_ref().is_finite() && *x.get_ref() > 0.0) => Err((
            Some(x.span()),
            format!(
                "{what} = {} must be a finite number of milliseconds above 0",
                x.get_ref()
            ),
        )),
        _ => Ok(()),
    }
}

impl Probe {
    pub(super) fn validate(&self) -> Result<(), Problem> {
        printable("project", &self.project)?;
        printable("[identity] name", &self.identity.name)?;
        printable("[metrics] url", &self.metrics.url)?;
        http_url("[metrics] url", &self.metrics.url)?;
        env_var_name("[metrics] token_env", &self.metrics.token_env)?;
        env_var_name("[store] password_env", &self.store.password_env)?;
        let q = &self.metrics.queries;
        for (key, template, known) in [
            ("requests", &q.requests, &["env", "step"][..]),
            ("errors", &q.errors, &["env", "step"][..]),
            ("latency", &q.latency, &["env", "step", "q"][..]),
        ] {
            if let Some(t) = template
                && let Some(why) = strategy::misspelled_placeholder(t.get_ref(), known)
            {
                return Err((Some(t.span()), format!("[metrics.queries] {key}: {why}")));
            }
        }
        if let Some(p) = &self.store.path
            && p.get_ref().trim().is_empty()
        {
            return Err((
                Some(p.span()),
                "[store] path is empty: name the database file, or remove the key for the default"
                    .into(),
            ));
        }
        if let Some(u) = &self.store.url
            && !(u.get_ref().starts_with("postgres://") || u.get_ref().starts_with("postgresql://"))
        {
            // Only the scheme: the rest may carry a password.
            let scheme = u.get_ref().split("://").next().unwrap_or("");
            return Err((
                Some(u.span()),
                format!(
                    "[store] url must start with postgres:// (or postgresql://), not {:?}",
                    if u.get_ref().contains("://") {
                        format!("{scheme}://")
                    } else {
                        "…".into()
                    }
                ),
            ));
        }
        if let Some(u) = &self.store.url
            && let Err(why) = crate::store::PgTarget::check_url(u.get_ref())
        {
            // The cause never quotes the URL: it may hold a password.
            return Err((Some(u.span()), format!("[store] url cannot be read: {why}")));
        }
        let m = &self.monitor;
        let zero = std::time::Duration::ZERO;
        at_least("[monitor] window", &m.window, zero)?;
        at_least("[monitor] baseline", &m.baseline, zero)?;
        at_least(
            "[metrics] step",
            &self.metrics.step,
            std::time::Duration::from_millis(100),
        )?;
        at_least("[metrics] timeout", &self.metrics.timeout, zero)?;
        at_most("[monitor] window", &m.window, limits::WINDOW)?;
        at_most("[monitor] baseline", &m.baseline, limits::BASELINE)?;
        at_most("[metrics] step", &self.metrics.step, limits::STEP)?;
        at_most(
            "[metrics] timeout",
            &self.metrics.timeout,
            limits::READ_TIMEOUT,
        )?;
        // The console polls no faster than every 100 ms: a shorter refresh
        // was accepted and silently ran at 100 ms.
        at_least(
            "[ui] refresh",
            &self.ui.refresh,
            std::time::Duration::from_millis(100),
        )?;
        at_most("[ui] refresh", &self.ui.refresh, limits::POLL)?;
        at_least("[release] timeout", &self.release.timeout, zero)?;
        at_most(
            "[release] timeout",
            &self.release.timeout,
            limits::READ_TIMEOUT,
        )?;
        if let Some(ci) = &self.release.ci {
            at_least("[release] ci timeout", &ci.timeout, zero)?;
            at_most("[release] ci timeout", &ci.timeout, limits::READ_TIMEOUT)?;
        }
        if let Some(b) = &self.release.backup {
            at_least("[release] backup timeout", &b.timeout, zero)?;
            at_most(
                "[release] backup timeout",
                &b.timeout,
                limits::DEPLOY_TIMEOUT,
            )?;
        }
        if let Some(r) = &m.max_error_rate
            && !(r.get_ref().is_finite() && (0.0..=1.0).contains(r.get_ref()))
        {
            return Err((
                Some(r.span()),
                format!(
                    "[monitor] max_error_rate = {} must be a fraction between 0 and 1 (1% = 0.01)",
                    r.get_ref()
                ),
            ));
        }
        positive_ms("[monitor] max_p50_ms", &m.max_p50_ms)?;
        positive_ms("[monitor] max_p95_ms", &m.max_p95_ms)?;
        positive_ms("[monitor] max_p99_ms", &m.max_p99_ms)?;
        for (i, e) in self.environments.iter().enumerate() {
            let name = e.name.as_deref().unwrap_or("?");
            release::check_gate_keys(&self.release, name, i, &e.gates)?;
            printable("metrics_label", &e.metrics_label)?;
            printable("restore_command", &e.restore_command)?;
            for (what, src) in [("version", &e.version), ("deploy", &e.deploy)] {
                env_var_name(&format!("{what} token_env"), &src.token_env)?;
                printable("url", &src.url)?;
                printable("webhook", &src.webhook)?;
                if let Some(prog) = src.command.as_ref().and_then(|c| c.first()) {
                    printable("command", &Some(prog.clone()))?;
                }
            }
            at_least("version timeout", &e.version.timeout, zero)?;
            at_least("deploy timeout", &e.deploy.timeout, zero)?;
            at_least(
                "deploy poll",
                &e.deploy.poll,
                std::time::Duration::from_millis(100),
            )?;
            at_most("version timeout", &e.version.timeout, limits::READ_TIMEOUT)?;
            at_most("deploy timeout", &e.deploy.timeout, limits::DEPLOY_TIMEOUT)?;
            at_most("deploy poll", &e.deploy.poll, limits::POLL)?;
        }
        Ok(())
    }
}

//! A blue-green environment's outside systems (SPEC §2): which slot is
//! live, what each slot runs, deploying one slot, and switching traffic.
//! Each reuses an existing backend — a version source, a deploy target —
//! with `{slot}` filled in; only the switch is new: a command with
//! `{slot}` (argv, never a shell) or a webhook POSTed `{"slot": …}`.

use std::time::Duration;

use super::BackendError;
use super::deploy::DeployTarget;
use super::http::SMALL_BODY_CAP;
use super::util::{fill, read_body, run_command, secret, show_url};
use super::version::VersionSource;
use crate::config::{BlueGreenConfig, DeployConfig, VersionSourceConfig};
use crate::domain::Version;

/// One blue-green environment's backends.
#[derive(Clone, Debug)]
pub struct BlueGreen {
    env: String,
    slots: [String; 2],
    live: VersionSource,
    versions: [VersionSource; 2],
    deploys: [DeployTarget; 2],
    switch: Switch,
}

/// One reading of a blue-green environment's sources
/// ([`BlueGreen::read_all`]).
#[derive(Clone, Debug)]
pub struct SlotsReading {
    slots: [String; 2],
    env: String,
    /// Which slot is live.
    pub live: Result<String, BackendError>,
    /// What each slot runs, in the config's order.
    pub versions: [Result<Version, BackendError>; 2],
}

impl SlotsReading {
    /// The slots, in the config's order.
    pub fn slots(&self) -> &[String; 2] {
        &self.slots
    }

    /// What the environment runs: the live slot's version, or why it is
    /// unknown (the live slot's error first).
    pub fn live_version(&self) -> Result<Version, BackendError> {
        let live = self.live.as_ref().map_err(Clone::clone)?;
        let i = slot_index(&self.slots, &self.env, live)?;
        self.versions[i].clone()
    }
}

fn slot_index(slots: &[String; 2], env: &str, slot: &str) -> Result<usize, BackendError> {
    slots
        .iter()
        .position(|s| s == slot)
        .ok_or_else(|| BackendError::Garbage {
            backend: format!("slots of {env}"),
            cause: format!("{slot:?} is not one of its slots ({})", slots.join(", ")),
        })
}

/// Sending all traffic to one slot.
#[derive(Clone, Debug)]
enum Switch {
    Command {
        template: Vec<String>,
        name: String,
        timeout: Duration,
    },
    Webhook {
        client: reqwest::Client,
        url: String,
        token_env: Option<String>,
        name: String,
        timeout: Duration,
    },
}

fn with_slot_source(cfg: &VersionSourceConfig, slot: &str) -> VersionSourceConfig {
    let mut c = cfg.clone();
    c.url = c.url.map(|u| u.replace("{slot}", slot));
    c.command = c.command.map(|argv| fill(&argv, &[("slot", slot)]));
    c
}

/// `name` (`version command of production (cat)`) for one of the three
/// sources of a blue-green environment, which `what` it reads:
/// `version command of production's slot blue (cat)`. One template serves
/// both slots and a command's name shows only its program, so without it
/// an error could not say which source failed.
fn source_name(name: &str, env: &str, what: &str) -> String {
    let of = format!(" of {env}");
    match name.find(&of) {
        Some(i) => {
            let rest = i + of.len();
            format!("{}{of}'s {what}{}", &name[..i], &name[rest..])
        }
        None => format!("{name} ({what} of {env})"),
    }
}

fn with_slot_hook(cfg: &DeployConfig, slot: &str) -> DeployConfig {
    let mut c = cfg.clone();
    c.webhook = c.webhook.map(|u| u.replace("{slot}", slot));
    c.command = c.command.map(|argv| fill(&argv, &[("slot", slot)]));
    if let Some(r) = c.ready.as_mut() {
        let r = r.get_mut();
        r.command = fill(&r.command, &[("slot", slot)]);
    }
    c
}

impl BlueGreen {
    /// `cfg` has been validated: two distinct slot names, one backend each.
    pub fn from_config(env: &str, cfg: &BlueGreenConfig, client: reqwest::Client) -> BlueGreen {
        let names = cfg.slots.get_ref();
        let slot = |i: usize| names.get(i).cloned().unwrap_or_default();
        let slots = [slot(0), slot(1)];
        let version = |s: &str| {
            VersionSource::from_config(
                env,
                &with_slot_source(cfg.slot_version.get_ref(), s),
                client.clone(),
            )
            .renamed(|n| source_name(n, env, &format!("slot {s}")))
        };
        let deploy = |s: &str| {
            DeployTarget::from_config(
                env,
                &with_slot_hook(cfg.deploy.get_ref(), s),
                client.clone(),
            )
        };
        let sw = cfg.switch.get_ref();
        let timeout = sw.timeout.0;
        let switch = match (&sw.webhook, &sw.command) {
            (Some(url), _) => {
                let url = url.replace("{env}", env);
                crate::text::register_url_credentials(&url);
                Switch::Webhook {
                    // A redirect that would drop the POST is not followed.
                    client: crate::backends::http::post_client(Duration::from_secs(5))
                        .unwrap_or_else(|_| client.clone()),
                    name: format!("switch webhook of {env} ({})", show_url(&url)),
                    url,
                    token_env: sw.token_env.clone(),
                    timeout,
                }
            }
            (None, cmd) => {
                let template = fill(cmd.as_deref().unwrap_or_default(), &[("env", env)]);
                Switch::Command {
                    name: format!(
                        "switch command of {env} ({})",
                        template.first().map(String::as_str).unwrap_or("")
                    ),
                    template,
                    timeout,
                }
            }
        };
        BlueGreen {
            env: env.to_string(),
            live: VersionSource::from_config(env, &cfg.live.get_ref().as_source(), client.clone())
                .renamed(|n| source_name(n, env, "live slot")),
            versions: [version(&slots[0]), version(&slots[1])],
            deploys: [deploy(&slots[0]), deploy(&slots[1])],
            switch,
            slots,
        }
    }

    pub fn slots(&self) -> &[String; 2] {
        &self.slots
    }

    fn index(&self, slot: &str) -> Result<usize, BackendError> {
        slot_index(&self.slots, &self.env, slot)
    }

    /// The backend that says which slot is live, for messages.
    pub fn live_name(&self) -> &str {
        self.live.name()
    }

    /// Which slot is live; an answer that is not one of the slots is an
    /// error naming it.
    pub async fn live(&self) -> Result<String, BackendError> {
        let answer = self.live.read_text().await?;
        match self.slots.iter().find(|s| **s == answer) {
            Some(s) => Ok(s.clone()),
            None => Err(BackendError::Garbage {
                backend: self.live.name().to_string(),
                cause: format!(
                    "the live slot reads {:?}, which is not one of the slots ({})",
                    crate::text::excerpt(answer.as_bytes()),
                    self.slots.join(", ")
                ),
            }),
        }
    }

    /// Every source of the environment read once, all at once: the live
    /// slot and what each slot runs. What it runs is the live slot's
    /// version ([`SlotsReading::live_version`]), and the rollback plan is
    /// made of the rest, so a status needs no second read — a dead source
    /// costs one timeout, not one per question asked of it.
    pub async fn read_all(&self) -> SlotsReading {
        let (live, a, b) = tokio::join!(
            self.live(),
            self.versions[0].read(),
            self.versions[1].read()
        );
        SlotsReading {
            slots: self.slots.clone(),
            env: self.env.clone(),
            live,
            versions: [a, b],
        }
    }

    /// What the environment runs: the live slot's version. The live slot
    /// and both slots are read at once (which slot's answer counts is known
    /// only once the live slot is), so a plan waits for the slower of the
    /// two reads that matter, not their sum; once the live slot is known
    /// the other slot's read is dropped (its command killed), so a slow
    /// idle slot costs nothing. The live slot's error first.
    pub async fn live_version(&self) -> Result<Version, BackendError> {
        let live = self.live();
        let (a, b) = (self.versions[0].read(), self.versions[1].read());
        tokio::pin!(live, a, b);
        let (mut ra, mut rb) = (None, None);
        let slot = loop {
            tokio::select! {
                l = &mut live => break l?,
                r = &mut a, if ra.is_none() => ra = Some(r),
                r = &mut b, if rb.is_none() => rb = Some(r),
            }
        };
        match self.index(&slot)? {
            0 => match ra {
                Some(r) => r,
                None => a.await,
            },
            _ => match rb {
                Some(r) => r,
                None => b.await,
            },
        }
    }

    /// What a step of a deploy needs: which slot is live and what the idle
    /// slot runs — and what the live slot runs only when `with_live` (a
    /// rollback judges whether the old slot is warm by it; a promotion
    /// never asks). Read at once as [`Self::live_version`] reads them;
    /// once the live slot is known the reads not needed are dropped (their
    /// commands killed), so a hung live-slot source does not hold up a
    /// promotion. A read not waited for is `None`; the live slot's error
    /// leaves both unread.
    pub async fn read_for_step(
        &self,
        with_live: bool,
    ) -> (
        Result<String, BackendError>,
        [Option<Result<Version, BackendError>>; 2],
    ) {
        let live = self.live();
        let (a, b) = (self.versions[0].read(), self.versions[1].read());
        tokio::pin!(live, a, b);
        let (mut ra, mut rb) = (None, None);
        let live = loop {
            tokio::select! {
                l = &mut live => break l,
                r = &mut a, if ra.is_none() => ra = Some(r),
                r = &mut b, if rb.is_none() => rb = Some(r),
            }
        };
        let Ok(i) = live
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|l| self.index(l))
        else {
            return (live, [None, None]);
        };
        let need = [i != 0 || with_live, i != 1 || with_live];
        let (ra, rb) = tokio::join!(
            async {
                match ra {
                    None if need[0] => Some((&mut a).await),
                    r => r,
                }
            },
            async {
                match rb {
                    None if need[1] => Some((&mut b).await),
                    r => r,
                }
            }
        );
        (live, [ra, rb])
    }

    /// What `slot` runs.
    pub async fn version_of(&self, slot: &str) -> Result<Version, BackendError> {
        let i = self.index(slot)?;
        self.versions[i].read().await
    }

    /// Deploy `version` to `slot` (the deploy target with `{slot}` filled in).
    pub async fn deploy(
        &self,
        slot: &str,
        version: &Version,
        report: crate::backends::deploy::Report<'_>,
    ) -> Result<crate::backends::deploy::Started, BackendError> {
        let i = self.index(slot)?;
        self.deploys[i].start(&self.env, version, report).await
    }

    /// The ready check of `slot`'s deploy, when it has one.
    pub fn ready(&self, slot: &str) -> Option<&crate::backends::deploy::ready::ReadyCheck> {
        let i = self.index(slot).ok()?;
        self.deploys[i].ready()
    }

    /// Send all traffic to `slot`. A webhook whose answer was lost (or
    /// that answered 5xx) may have switched: that is
    /// [`BackendError::OutcomeUnknown`]; so is a command that timed out.
    pub async fn switch(&self, slot: &str) -> Result<String, BackendError> {
        self.index(slot)?;
        self.switch_raw(slot).await.map_err(BackendError::cleaned)
    }

    async fn switch_raw(&self, slot: &str) -> Result<String, BackendError> {
        match &self.switch {
            Switch::Command {
                template,
                name,
                timeout,
            } => {
                let argv = fill(template, &[("slot", slot)]);
                match run_command(name, &argv, *timeout).await {
                    Ok(_) => Ok(format!("{name} exited 0")),
                    Err(BackendError::Timeout { backend, after }) => {
                        Err(BackendError::OutcomeUnknown {
                            backend,
                            cause: format!(
                                "no exit within {}s; it was stopped, and may have switched",
                                after.as_secs_f64()
                            ),
                        })
                    }
                    Err(e) => Err(e),
                }
            }
            Switch::Webhook {
                client,
                url,
                token_env,
                name,
                timeout,
            } => {
                let url = url.replace("{slot}", slot);
                let mut req = client
                    .post(&url)
                    .timeout(*timeout)
                    .json(&serde_json::json!({"env": self.env, "slot": slot}));
                if let Some(tok) = secret(name, token_env.as_deref())? {
                    req = req.bearer_auth(tok);
                }
                let unknown = |cause: String| BackendError::OutcomeUnknown {
                    backend: name.clone(),
                    cause,
                };
                let resp = match req.send().await {
                    Ok(r) => r,
                    // Never connected: nothing was sent.
                    Err(e) if e.is_connect() => {
                        return Err(super::util::http_error(name, e, *timeout));
                    }
                    Err(e) => {
                        let e = super::util::http_error(name, e, *timeout);
                        return Err(unknown(format!("the answer was lost ({e})")));
                    }
                };
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = match read_body(name, resp, SMALL_BODY_CAP, *timeout).await {
                    Ok(b) => b,
                    Err(e) => return Err(unknown(format!("the answer was lost ({e})"))),
                };
                if status.is_server_error() {
                    return Err(unknown(format!(
                        "answered HTTP {} ({})",
                        status.as_u16(),
                        crate::text::excerpt(body.as_bytes())
                    )));
                }
                // A 302/303 is how a server answers a POST it acted on.
                if super::http::post_may_have_acted(status.as_u16()) {
                    return Err(unknown(format!(
                        "answered HTTP {} ({}): the switch may have been made",
                        status.as_u16(),
                        super::http::redirect_note(status.as_u16(), &headers).unwrap_or_default()
                    )));
                }
                if !status.is_success() {
                    return Err(BackendError::Status {
                        backend: name.clone(),
                        status: status.as_u16(),
                        body: super::http::redirect_note(status.as_u16(), &headers).unwrap_or(body),
                    });
                }
                Ok(format!("{name} accepted (HTTP {})", status.as_u16()))
            }
        }
    }
}

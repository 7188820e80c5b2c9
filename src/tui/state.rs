//! Everything the console knows, in one value. `update` changes it, `view`
//! draws it; neither reads the clock (`now` arrives with `Msg::Tick`).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{Config, RollbackStrategy};
use crate::domain::{AuditEntry, Decision, Gate, Version};

/// One audit record as one searchable line.
pub fn audit_text(e: &AuditEntry) -> String {
    let version = match (&e.from_version, &e.version) {
        (Some(f), Some(v)) => format!("{f} → {v}"),
        (None, Some(v)) => v.to_string(),
        _ => String::new(),
    };
    format!(
        "{} {} {} {} {} {} {}",
        super::format::short_timestamp(e.at),
        e.actor,
        e.action.as_str(),
        e.env,
        version,
        e.outcome.as_str(),
        e.detail
    )
}
use crate::engine::{EnvStatus, Status};
use crate::monitor::{BaselineSummary, Sample, Verdict};

use super::keymap::Context;
use super::msg::TaskKind;
use super::theme::Theme;

/// Most samples kept per series (baseline and window each): three hours of
/// one-second steps. Beyond it the oldest are dropped.
pub const MAX_SAMPLES: usize = 10_800;
/// Live metrics gathered from status snapshots cover this much time.
pub const LIVE_SPAN_S: i64 = 30 * 60;
/// And at most this many points.
pub const MAX_LIVE: usize = 3_600;
/// Notices kept (the newest is shown).
pub const MAX_NOTICES: usize = 20;
/// Audit entries loaded for the history view.
pub const HISTORY_LIMIT: usize = 500;

/// The settings the console acts on, taken from the config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub confirm_rollback: bool,
    pub read_only: bool,
    pub auto_rollback: bool,
    pub refresh: Duration,
    pub strategies: BTreeMap<String, RollbackStrategy>,
    /// Per environment, what a promotion does (steps, slots, keep_warm).
    pub outlines: BTreeMap<String, crate::domain::strategy::StrategyOutline>,
    /// Clicks select, the wheel scrolls (`[ui] mouse`).
    pub mouse: bool,
    /// Per environment, `(name, URL template)` pairs with `{env}` and
    /// `{version}` placeholders (`links = { … }`).
    pub links: BTreeMap<String, Vec<(String, String)>>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Settings {
            confirm_rollback: config.ui.confirm_rollback,
            read_only: config.ui.read_only,
            auto_rollback: config.monitor.auto_rollback,
            refresh: config.ui.refresh.0,
            strategies: config
                .environments
                .iter()
                .map(|e| (e.name().to_string(), e.strategy()))
                .collect(),
            outlines: config
                .environments
                .iter()
                .map(|e| (e.name().to_string(), outline(e)))
                .collect(),
            mouse: config.ui.mouse,
            links: config
                .environments
                .iter()
                .filter_map(|e| {
                    let links = e.links.as_ref()?.get_ref();
                    let l = links.iter().map(|(k, v)| (k.clone(), v.clone()));
                    Some((e.name().to_string(), l.collect()))
                })
                .collect(),
        }
    }

    pub fn strategy(&self, env: &str) -> &'static str {
        self.strategies
            .get(env)
            .copied()
            .unwrap_or_default()
            .as_str()
    }
}

/// What the config says a promotion of `e` does.
fn outline(e: &crate::config::EnvironmentConfig) -> crate::domain::strategy::StrategyOutline {
    use crate::config::RollbackStrategy;
    use crate::domain::strategy::StrategyOutline;
    match e.strategy() {
        RollbackStrategy::BlueGreen => match e.blue_green.as_ref().map(|b| b.get_ref()) {
            Some(b) => match b.slots.get_ref().as_slice() {
                [a, c] => StrategyOutline::BlueGreen {
                    slots: [a.clone(), c.clone()],
                    keep_warm: b.keep_warm.0,
                },
                _ => StrategyOutline::Redeploy,
            },
            None => StrategyOutline::Redeploy,
        },
        RollbackStrategy::Canary => match e.canary.as_ref().map(|c| c.get_ref()) {
            Some(c) => StrategyOutline::Canary {
                steps: c
                    .steps
                    .get_ref()
                    .iter()
                    .map(|s| (*s).clamp(0, 100) as u8)
                    .collect(),
                step_time: c.step_time.0,
            },
            None => StrategyOutline::Redeploy,
        },
        RollbackStrategy::Redeploy => StrategyOutline::Redeploy,
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            confirm_rollback: true,
            read_only: false,
            auto_rollback: true,
            refresh: Duration::from_secs(1),
            strategies: BTreeMap::new(),
            outlines: BTreeMap::new(),
            mouse: true,
            links: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Console,
    History,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    Help,
    Dialog(Dialog),
    /// Everything known about one thing, unabridged.
    Detail(Detail),
    /// Typing the history filter (`/`).
    Filter,
    /// Choosing a version to promote.
    Picker(Picker),
}

/// What a detail view shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    /// An environment: its state, its last monitoring window and verdict.
    Env(String),
    /// One audit record.
    Audit(AuditEntry),
}

/// Versions that could be promoted to `env`: what the earlier stages run
/// or ran.
#[derive(Clone, Debug, PartialEq)]
pub struct Picker {
    pub env: String,
    pub items: Vec<PickItem>,
    pub cursor: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PickItem {
    pub version: Version,
    /// Where it was seen: `runs on staging`, `ran on development 3h ago`.
    pub seen: String,
}

/// A dialog: the typed action it will start on Enter, and the note being
/// typed when the action takes one.
#[derive(Clone, Debug, PartialEq)]
pub struct Dialog {
    pub action: Pending,
    pub note: Option<String>,
}

/// Longest note accepted in the approval dialog.
pub const MAX_NOTE: usize = 200;

/// An action waiting for Enter.
#[derive(Clone, Debug, PartialEq)]
pub enum Pending {
    Promote {
        env: String,
        version: Version,
        current: Option<Version>,
        source: Option<String>,
        skips: Vec<String>,
        warnings: Vec<Gate>,
        production: bool,
        /// Chosen in the picker rather than what the stage before runs.
        explicit: bool,
    },
    Approve {
        env: String,
        version: Version,
        source: Option<String>,
        decision: Decision,
        /// The engine's word that this Go would be refused (team policy),
        /// shown before Enter; the engine decides again when it acts.
        refused: Option<Gate>,
    },
    Rollback {
        env: String,
        from: Option<Version>,
        to: Option<Version>,
        strategy: &'static str,
        production: bool,
    },
    /// Quit while something runs; the dialog lists what runs as it goes.
    Quit,
    /// Answer the review a deploy waits for in its CI/CD system.
    Review {
        env: String,
        version: Version,
        /// "GitHub Actions run #4812".
        what: String,
        /// "waiting on a reviewer for environment production".
        prompt: String,
        approve: bool,
    },
}

/// An engine call running for an environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub kind: TaskKind,
    pub started: DateTime<Utc>,
    pub version: Option<Version>,
}

/// A deploy (or rollback) as the engine reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployProgress {
    pub version: Version,
    pub from: Option<Version>,
    pub rollback: bool,
    pub started: DateTime<Utc>,
    pub elapsed_s: f64,
    pub observed: Option<Version>,
    /// `(ok, detail)` once finished.
    pub finished: Option<(bool, String)>,
    /// The deploy backend's latest report (a CI run's state and step, a
    /// review it waits for) and when it arrived.
    pub backend: Option<(crate::backends::deploy::Progress, DateTime<Utc>)>,
}

impl DeployProgress {
    /// The backend's line, its elapsed time counted on to `now`.
    pub fn backend_line(&self, now: DateTime<Utc>) -> Option<String> {
        self.backend.as_ref().map(|(p, at)| {
            let since = (now - *at).num_milliseconds().max(0) as f64 / 1000.0;
            p.line_at(p.elapsed_s + since)
        })
    }

    /// What the backend's run waits for from a human, while it does.
    pub fn waiting(&self) -> Option<&crate::backends::deploy::Waiting> {
        self.backend
            .as_ref()
            .filter(|_| self.finished.is_none())
            .and_then(|(p, _)| p.waiting.as_ref())
    }
}

/// A monitoring window: the baseline before the deploy, the samples after
/// it, and the detector's latest verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub version: Version,
    pub deploy_at: DateTime<Utc>,
    pub window_s: f64,
    /// The engine's words for the baseline the verdict uses.
    pub baseline_note: String,
    pub baseline: VecDeque<Sample>,
    pub samples: VecDeque<Sample>,
    pub verdict: Option<Verdict>,
    pub summary: BaselineSummary,
    pub running: bool,
    /// A regression of this window has been announced already.
    pub alarmed: bool,
    /// When a rollback of this version began, seconds after the deploy.
    pub rollback_t: Option<f64>,
}

impl Window {
    pub fn push(&mut self, sample: Sample) {
        let list = if sample.t <= 0.0 {
            &mut self.baseline
        } else {
            &mut self.samples
        };
        list.push_back(sample);
        while list.len() > MAX_SAMPLES {
            list.pop_front();
        }
    }

    /// Seconds left in the window at `now` (never negative).
    pub fn remaining_s(&self, now: DateTime<Utc>) -> f64 {
        let elapsed = (now - self.deploy_at).num_milliseconds() as f64 / 1000.0;
        (self.window_s - elapsed).max(0.0)
    }
}

/// One point of live metrics, from a status snapshot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LivePoint {
    pub at: DateTime<Utc>,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// What the console tracks per environment beyond the status snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvUi {
    pub task: Option<Task>,
    pub deploy: Option<DeployProgress>,
    pub window: Option<Window>,
    pub live: VecDeque<LivePoint>,
    /// The canary being judged, from the engine's last canary event.
    pub canary: Option<CanaryView>,
}

/// A canary as the console shows it: weight, step, time left, and both
/// tracks' metrics since its first step.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryView {
    pub version: Version,
    pub weight: u8,
    pub step: usize,
    pub steps: usize,
    /// Seconds left in the step when `at` was seen.
    pub left_s: f64,
    pub at: DateTime<Utc>,
    pub verdict: crate::monitor::Verdict,
    /// When its first step began: the origin of `t` below.
    pub started: DateTime<Utc>,
    /// Each step's start (seconds after `started`) and weight.
    pub step_starts: Vec<(f64, u8)>,
    /// Canary and stable, one pair per metrics step (bounded).
    pub pairs: VecDeque<crate::monitor::TrackPair>,
}

impl CanaryView {
    /// Seconds left in the step at `now` (never negative).
    pub fn left_at(&self, now: DateTime<Utc>) -> f64 {
        (self.left_s - (now - self.at).num_milliseconds() as f64 / 1000.0).max(0.0)
    }

    /// Add the pairs of one event, keeping the newest [`MAX_SAMPLES`].
    pub fn extend(&mut self, pairs: impl IntoIterator<Item = crate::monitor::TrackPair>) {
        for p in pairs {
            if self.pairs.back().is_some_and(|last| p.t <= last.t) {
                continue;
            }
            self.pairs.push_back(p);
        }
        while self.pairs.len() > MAX_SAMPLES {
            self.pairs.pop_front();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub at: DateTime<Utc>,
    pub level: Level,
    pub text: String,
    /// Shown no longer than this (seconds), when what it says ends sooner
    /// than its level's usual time (a wait of 10 s); `None`: the usual.
    pub lasts_s: Option<i64>,
    /// Shown only while the keys are those of this context: a key's "does
    /// nothing here: Enter confirms" is wrong once its dialog closed.
    pub only_in: Option<Context>,
}

/// A regression the engineer has to act on (auto-rollback is off).
#[derive(Clone, Debug, PartialEq)]
pub struct Alarm {
    pub env: String,
    pub version: Version,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Loading / Loaded(age) / Error of a panel's source.
#[derive(Clone, Debug, PartialEq)]
pub enum PanelState<'a> {
    Loading,
    Loaded { age_s: i64 },
    Error { reason: &'a str, age_s: Option<i64> },
}

#[derive(Clone, Debug)]
pub struct State {
    pub now: DateTime<Utc>,
    pub settings: Settings,
    pub theme: Theme,
    pub size: (u16, u16),

    pub status: Option<Status>,
    pub status_error: Option<String>,
    pub status_loading: bool,
    pub status_requested_at: Option<DateTime<Utc>>,
    /// An action finished since the last snapshot: gates shown may be stale.
    pub status_stale: bool,
    /// `p` was pressed while the snapshot was stale: ask once it is fresh.
    pub promote_when_fresh: bool,
    /// A snapshot was already on its way when an action finished: load again.
    pub reload_after: bool,

    pub history: Option<Vec<AuditEntry>>,
    pub history_error: Option<String>,
    pub history_loading: bool,
    /// The highlighted row of the (filtered) audit log.
    pub history_cursor: usize,
    /// Only rows containing this text (case-insensitive) are listed.
    pub history_filter: String,
    /// First line of the help screen shown (it scrolls when the terminal is short).
    pub help_scroll: usize,
    /// First commit of the pending release shown in its panel (↑↓ scroll it).
    pub commit_scroll: usize,

    pub selected: usize,
    pub mode: Mode,
    pub overlays: Vec<Overlay>,
    pub envs: BTreeMap<String, EnvUi>,
    pub notices: VecDeque<Notice>,
    /// The store another process holds, whose wait this console said and
    /// follows (`Effect::AwaitStore`), with the notice that says it.
    pub store_wait: Option<(String, String)>,
    pub alarm: Option<Alarm>,
    /// This console's own monitoring windows, for the engine's rule on
    /// which deploy needs one (one watcher per deploy; a failed one is
    /// watched again after a pause).
    pub watched: crate::engine::rewatch::OwnWindows,

    pub dirty: bool,
    pub quit: bool,
    /// What a Ctrl-C quit stopped (one line each, as [`Self::running`]):
    /// the console then exits 130, like a command Ctrl-C interrupted.
    pub interrupted: Vec<String>,
}

impl State {
    /// The store could not be read for the snapshot shown: "store
    /// unreachable for 12s" (a team store reconnecting) or "store error".
    /// Whatever lives there (approvals, deploys, locks, windows) is then
    /// unknown, not none, and actions that record are refused.
    pub fn store_down(&self) -> Option<String> {
        let s = self.status.as_ref()?;
        s.store_error.as_ref()?;
        Some(match s.store_unreachable_since {
            Some(since) => format!(
                "store unreachable for {}",
                crate::tui::format::age((self.now - since).num_seconds().max(0))
            ),
            None => "store error".to_string(),
        })
    }

    pub fn new(settings: Settings, theme: Theme, now: DateTime<Utc>) -> Self {
        State {
            now,
            settings,
            theme,
            size: (0, 0),
            status: None,
            status_stale: false,
            promote_when_fresh: false,
            reload_after: false,
            status_error: None,
            status_loading: false,
            status_requested_at: None,
            history: None,
            history_error: None,
            history_loading: false,
            history_cursor: 0,
            history_filter: String::new(),
            help_scroll: 0,
            commit_scroll: 0,
            selected: 0,
            mode: Mode::Console,
            overlays: Vec::new(),
            envs: BTreeMap::new(),
            notices: VecDeque::new(),
            store_wait: None,
            alarm: None,
            watched: Default::default(),
            dirty: true,
            quit: false,
            interrupted: Vec::new(),
        }
    }

    pub fn environments(&self) -> &[EnvStatus] {
        self.status
            .as_ref()
            .map(|s| s.environments.as_slice())
            .unwrap_or(&[])
    }

    pub fn selected_env(&self) -> Option<&EnvStatus> {
        self.environments().get(self.selected)
    }

    pub fn env_status(&self, name: &str) -> Option<&EnvStatus> {
        self.environments().iter().find(|e| e.name == name)
    }

    pub fn env_ui(&self, name: &str) -> Option<&EnvUi> {
        self.envs.get(name)
    }

    /// The version a monitoring window this console runs is rolling
    /// `name` back to by itself (auto-rollback), while it does.
    pub fn auto_rollback_to(&self, name: &str) -> Option<&Version> {
        let u = self.envs.get(name)?;
        let d = u.deploy.as_ref()?;
        (u.task.as_ref().is_some_and(|t| t.kind == TaskKind::Watch)
            && d.rollback
            && d.finished.is_none())
        .then_some(&d.version)
    }

    pub fn env_ui_mut(&mut self, name: &str) -> &mut EnvUi {
        self.envs.entry(name.to_string()).or_default()
    }

    /// Where the keyboard goes now.
    pub fn context(&self) -> Context {
        match self.overlays.last() {
            Some(Overlay::Help) => Context::Help,
            Some(Overlay::Dialog(d)) if d.note.is_some() => Context::Input,
            Some(Overlay::Dialog(_)) => Context::Dialog,
            Some(Overlay::Filter) => Context::Input,
            Some(Overlay::Detail(_)) => Context::Detail,
            Some(Overlay::Picker(_)) => Context::Picker,
            None => match self.mode {
                Mode::Console => Context::Main,
                Mode::History => Context::History,
            },
        }
    }

    /// The terminal is smaller than the console needs: only the
    /// "enlarge" screen shows, and keys other than quitting do nothing.
    pub fn too_small(&self) -> bool {
        let (w, h) = self.size;
        // (0, 0): not measured yet (tests draw at any size).
        (w, h) != (0, 0) && (w < super::view::MIN_WIDTH || h < super::view::MIN_HEIGHT)
    }

    /// The audit log as listed: newest first, filtered.
    pub fn history_rows(&self) -> Vec<&AuditEntry> {
        let needle = self.history_filter.to_lowercase();
        self.history
            .iter()
            .flatten()
            .filter(|e| needle.is_empty() || audit_text(e).to_lowercase().contains(&needle))
            .collect()
    }

    /// The links of `env` with its placeholders filled in (a link that
    /// needs the version is left out while the version is unknown).
    pub fn links(&self, env: &EnvStatus) -> Vec<(String, String)> {
        let Some(list) = self.settings.links.get(&env.name) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|(name, template)| {
                let url = crate::config::expand_link(
                    template,
                    &env.name,
                    env.version.as_ref().map(|v| v.as_str()),
                )?;
                Some((name.clone(), url))
            })
            .collect()
    }

    pub fn status_panel(&self) -> PanelState<'_> {
        let age = self
            .status
            .as_ref()
            .map(|s| (self.now - s.generated_at).num_seconds().max(0));
        match (&self.status_error, age) {
            (Some(reason), age_s) => PanelState::Error { reason, age_s },
            (None, Some(age_s)) => PanelState::Loaded { age_s },
            (None, None) => PanelState::Loading,
        }
    }

    /// What runs now, one line each, for the quit question.
    pub fn running(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (env, ui) in &self.envs {
            if let Some(task) = &ui.task {
                match task.kind {
                    TaskKind::Watch => {
                        let left = ui
                            .window
                            .as_ref()
                            .map(|w| w.remaining_s(self.now))
                            .unwrap_or(0.0);
                        out.push(format!(
                            "monitoring window of {env} ({} left)",
                            super::format::countdown(left)
                        ));
                    }
                    kind => out.push(format!("{} of {env}", kind.verb())),
                }
            }
        }
        out
    }

    /// The environment whose charts the monitoring panel shows: the selected
    /// one if it has a running window, else any running window, else the
    /// selected one (its last window, or its live metrics).
    /// A canary of `name` is being judged now: the console has its events
    /// and the deploy that runs it has not finished.
    pub fn canary_running(&self, name: &str) -> bool {
        self.envs.get(name).is_some_and(|u| {
            u.canary.is_some()
                && u.deploy
                    .as_ref()
                    .is_some_and(|d| d.finished.is_none() && !d.rollback)
        })
    }

    pub fn chart_env(&self) -> Option<&str> {
        let selected = self.selected_env().map(|e| e.name.as_str());
        let running = |name: &str| {
            self.canary_running(name)
                || self
                    .envs
                    .get(name)
                    .and_then(|u| u.window.as_ref())
                    .is_some_and(|w| w.running)
        };
        if let Some(sel) = selected.filter(|n| running(n)) {
            return Some(sel);
        }
        self.environments()
            .iter()
            .map(|e| e.name.as_str())
            .find(|n| running(n))
            .or(selected)
    }

    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.notify_for(level, text, None);
    }

    /// [`State::notify`], gone after `lasts_s` seconds at most.
    pub fn notify_for(&mut self, level: Level, text: impl Into<String>, lasts_s: Option<i64>) {
        self.notices.push_front(Notice {
            at: self.now,
            level,
            text: text.into(),
            lasts_s,
            only_in: None,
        });
        self.notices.truncate(MAX_NOTICES);
        self.dirty = true;
    }

    /// [`State::notify`] about the keys on screen now: shown only while
    /// they stay the keys (the same context).
    pub fn notify_here(&mut self, level: Level, text: impl Into<String>) {
        self.notify(level, text);
        let here = self.context();
        if let Some(n) = self.notices.front_mut() {
            n.only_in = Some(here);
        }
    }

    /// The notice to show now: the newest, while it is recent enough.
    pub fn current_notice(&self) -> Option<&Notice> {
        self.notices.front().filter(|n| {
            let keep = match n.level {
                Level::Info => 15,
                Level::Warn => 30,
                Level::Error => 60,
            };
            let keep = n.lasts_s.map_or(keep, |l| l.min(keep));
            (self.now - n.at).num_seconds() < keep && n.only_in.is_none_or(|c| c == self.context())
        })
    }
}

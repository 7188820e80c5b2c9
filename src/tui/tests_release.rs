//! The console and the pending release from the repository: commits that
//! scroll, migration releases flagged in the panel, the environment column
//! and the dialogs, freezes in the header and the promote dialog (which
//! asks why it is broken), and the restore command on a rollback.

use chrono::{Duration, TimeZone, Utc};
use crossterm::event::KeyCode;

use super::msg::Effect;
use super::state::{Overlay, State};
use super::tests::fixture::*;
use crate::domain::release::{Backup, Commit, Freeze, Rfc3339, SchemaNotice};
use crate::domain::{Gate, GateSeverity};
use crate::engine::{ReleaseFacts, RollbackTarget};

fn commits(n: usize) -> Vec<Commit> {
    (0..n)
        .map(|i| Commit {
            sha: format!("{:040x}", 0xabc0000 + i),
            author: "Carol Dba".into(),
            date: (t0() - Duration::hours(i as i64 + 1)).fixed_offset(),
            subject: format!("change number {}", n - i),
        })
        .collect()
}

fn migration_release(n: usize) -> ReleaseFacts {
    ReleaseFacts {
        repository: Some("/srv/shop".into()),
        commits: commits(n),
        commits_total: n,
        commits_capped: false,
        migrations: vec!["migrations/0003_orders.sql".into()],
        migration_release: true,
        git_error: None,
        backup: None,
        dropped: Vec::new(),
        dropped_total: 0,
        dropped_capped: false,
        dropped_migrations: Vec::new(),
    }
}

#[test]
fn the_pending_panel_lists_the_commits_flags_migrations_and_scrolls() {
    let mut s = console();
    with_production(&mut s, |p| p.release = Some(migration_release(40)));
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("⚠ MIGRATIONS migrations/0003_orders.sql"),
        "{text}"
    );
    assert!(text.contains("Commits 1–"), "{text}");
    assert!(text.contains("of 40"), "{text}");
    assert!(text.contains("change number 40"), "{text}");
    assert!(text.contains("Carol Dba"), "{text}");
    // The environment column says what comes next changes the database.
    assert!(text.contains("⚠ db"), "{text}");
    for _ in 0..3 {
        update_key(&mut s, 'j');
    }
    assert_eq!(s.commit_scroll, 3);
    let text = screen(&s, 160, 45);
    assert!(text.contains("Commits 4–"), "{text}");
    assert!(!text.contains("change number 40"), "{text}");
    assert!(text.contains("change number 37"), "{text}");
    // Page down, and never past the end.
    for _ in 0..10 {
        code(&mut s, KeyCode::PageDown);
    }
    assert_eq!(s.commit_scroll, 39);
    let text = screen(&s, 160, 45);
    assert!(text.contains("change number 1"), "{text}");
    code(&mut s, KeyCode::Up);
    assert_eq!(s.commit_scroll, 38);
    // Another environment starts at its top.
    code(&mut s, KeyCode::Left);
    assert_eq!(s.commit_scroll, 0);
}

fn update_key(s: &mut State, c: char) {
    key(s, c);
}

#[test]
fn a_repository_that_cannot_answer_is_shown_in_the_panel() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.release = Some(ReleaseFacts {
            repository: Some("/srv/shop".into()),
            git_error: Some("v1.8.0: no tag v1.8.0 in /srv/shop".into()),
            ..ReleaseFacts::default()
        })
    });
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("v1.8.0: no tag v1.8.0 in /srv/shop"),
        "{text}"
    );
}

#[test]
fn the_promote_and_approval_dialogs_flag_a_migration_release() {
    let mut s = console();
    approved(&mut s);
    with_production(&mut s, |p| {
        let mut r = migration_release(3);
        r.backup = Some(Backup {
            id: "bk-77".into(),
            at: t0() - Duration::minutes(5),
        });
        p.release = Some(r);
    });
    key(&mut s, 'p');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains(
            "⚠ v1.8.0 changes the database (1 migration): a code rollback will not undo it"
        ) && text.contains("migrations: migrations/0003_orders.sql"),
        "{text}"
    );
    assert!(text.contains("backup bk-77 recorded"), "{text}");
    code(&mut s, KeyCode::Esc);
    key(&mut s, 'a');
    let text = screen(&s, 160, 45);
    assert!(text.contains("changes the database"), "{text}");
}

#[test]
fn a_frozen_environment_shows_in_the_header_and_its_promote_asks_why() {
    let mut s = console();
    approved(&mut s);
    let freeze = Freeze {
        from: Rfc3339(
            Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0)
                .unwrap()
                .fixed_offset(),
        ),
        to: Rfc3339(
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .unwrap()
                .fixed_offset(),
        ),
        envs: vec!["production".into()],
        reason: "Black Friday".into(),
    };
    with_production(&mut s, |p| {
        p.freeze = Some(freeze.clone());
        p.promotion.as_mut().unwrap().gates.push(Gate::block(
            "freeze",
            false,
            format!("production is {}", freeze.describe()),
        ));
    });
    let text = screen(&s, 160, 45);
    assert!(text.contains("❄ FROZEN production"), "{text}");
    assert!(text.contains("Black Friday"), "{text}");
    // p opens the dialog with a field for the reason; Enter alone does nothing.
    key(&mut s, 'p');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("production is frozen until 2026-12-01 00:00 UTC: Black Friday"),
        "{text}"
    );
    assert!(text.contains("Why break the freeze (audited):"), "{text}");
    assert!(code(&mut s, KeyCode::Enter).is_empty());
    assert!(matches!(s.overlays.last(), Some(Overlay::Dialog(_))));
    // Keys type into the reason: p does not promote again.
    for c in "hotfix INC-42".chars() {
        key(&mut s, c);
    }
    let fx = code(&mut s, KeyCode::Enter);
    match &fx[..] {
        [Effect::Promote { break_freeze, .. }] => {
            assert_eq!(break_freeze.as_deref(), Some("hotfix INC-42"))
        }
        other => panic!("{other:?}"),
    }
    // Another refusal is not turned into a freeze dialog.
    let mut s = console();
    with_production(&mut s, |p| {
        p.freeze = Some(freeze.clone());
        p.promotion.as_mut().unwrap().gates.push(Gate {
            name: "freeze".into(),
            ok: false,
            detail: "frozen".into(),
            severity: GateSeverity::Block,
        });
    });
    key(&mut s, 'p');
    assert!(s.overlays.is_empty(), "the approval gate still refuses");
}

#[test]
fn the_rollback_dialog_says_the_schema_stays_and_shows_the_restore_command() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.rollback = Some(RollbackTarget {
            to: Some(v("v1.7.2")),
            detail: "v1.7.3 → v1.7.2, the last known-good version".into(),
        });
        p.rollback_schema = Some(SchemaNotice {
            migrations: vec!["migrations/0003_orders.sql".into()],
            warning: "v1.7.3 carries database migrations (migrations/0003_orders.sql): rolling back the code leaves the schema as it is".into(),
            restore: Some("pg_restore --clean -d shop /backups/bk-77".into()),
            backup: Some(Backup {
                id: "bk-77".into(),
                at: t0() - Duration::hours(1),
            }),
        });
    });
    key(&mut s, 'r');
    let text = screen(&s, 160, 45);
    assert!(text.contains("leaves the schema as it is"), "{text}");
    assert!(text.contains("shipdeck never runs it"), "{text}");
    assert!(
        text.contains("pg_restore --clean -d shop /backups/bk-77"),
        "{text}"
    );
    // The environment column flags it too.
    code(&mut s, KeyCode::Esc);
    assert!(screen(&s, 160, 45).contains("⚠ db"));
}

/// Production runs two commits v1.8.0 does not have (a hotfix never merged
/// back); with `migration`, one of them is a migration.
fn dropping_release(migration: bool) -> ReleaseFacts {
    let mut dropped = commits(2);
    dropped[0].sha = format!("a1b2c3d{}", "0".repeat(33));
    dropped[0].subject = "hotfix: retry declined payments".into();
    ReleaseFacts {
        repository: Some("/srv/shop".into()),
        commits: commits(3),
        commits_total: 3,
        commits_capped: false,
        migrations: Vec::new(),
        migration_release: false,
        git_error: None,
        backup: None,
        dropped,
        dropped_total: 2,
        dropped_capped: false,
        dropped_migrations: if migration {
            vec!["migrations/0004_orders_day.sql".into()]
        } else {
            Vec::new()
        },
    }
}

#[test]
fn a_release_that_drops_what_production_runs_says_so_in_the_panel_and_the_promote_dialog() {
    let calm = "! drops 2 commits production runs (not in v1.8.0)";
    // The ordinary linear case says nothing of the kind.
    let mut s = console();
    approved(&mut s);
    with_production(&mut s, |p| p.release = Some(migration_release(3)));
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(!text.contains("drops"), "{w}x{h}:\n{text}");
    }
    key(&mut s, 'p');
    assert!(!screen(&s, 80, 24).contains("drops"));
    code(&mut s, KeyCode::Esc);

    with_production(&mut s, |p| p.release = Some(dropping_release(false)));
    let text = screen(&s, 160, 45);
    // With room the line is whole (wrapped in the panel's width).
    assert!(
        text.contains(&format!("{calm}: a1b2c3d"))
            && text.contains("hotfix: retry declined payments"),
        "{text}"
    );
    let small = screen(&s, 80, 24);
    assert!(small.contains("! drops 2 commits production"), "{small}");
    // The promote dialog keeps it with its production line and its keys, at 80×24.
    key(&mut s, 'p');
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(text.contains(calm), "{w}x{h}:\n{text}");
        assert!(
            text.contains("This deploys to PRODUCTION."),
            "{w}x{h}:\n{text}"
        );
        assert!(text.contains("Esc"), "{w}x{h}:\n{text}");
    }
    code(&mut s, KeyCode::Esc);

    // Dropping a migration is said loudly, in the panel and the dialog.
    with_production(&mut s, |p| p.release = Some(dropping_release(true)));
    let loud = "!! DROPS 2 commits production runs (not in v1.8.0)";
    let text = screen(&s, 160, 45);
    assert!(
        text.contains(loud) && text.contains("migrations/0004_orders_day.sql"),
        "{text}"
    );
    let small = screen(&s, 80, 24);
    assert!(small.contains("!! DROPS 2 commits production"), "{small}");
    key(&mut s, 'p');
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(text.contains(loud), "{w}x{h}:\n{text}");
        assert!(
            text.contains("migrations/0004_orders_day.sql"),
            "{w}x{h}:\n{text}"
        );
        assert!(
            text.contains("This deploys to PRODUCTION."),
            "{w}x{h}:\n{text}"
        );
    }
}

/// The rows inside the open approval dialog's border.
fn approval_rows(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains("Approval for production"))
        .expect("the approval dialog is open");
    let left = lines[top]
        .chars()
        .position(|c| c == '╭' || c == '╔')
        .unwrap();
    lines[top + 1..]
        .iter()
        .map(|l| l.chars().skip(left + 1).collect::<String>())
        .take_while(|l| !l.starts_with('─') && !l.starts_with('═'))
        .map(|l| l.chars().take_while(|&c| c != '│' && c != '║').collect())
        .collect()
}

#[test]
fn the_approval_dialog_says_what_the_version_drops_before_a_go() {
    let mut s = console();
    with_production(&mut s, |p| p.release = Some(dropping_release(true)));
    key(&mut s, 'a');
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        let rows = approval_rows(&text).join("\n");
        assert!(
            rows.contains("!! DROPS 2 commits production runs (not in v1.8.0)"),
            "{w}x{h}:\n{text}"
        );
        assert!(rows.contains("Enter record Go"), "{w}x{h}:\n{text}");
    }
    code(&mut s, KeyCode::Esc);
    // The ordinary linear case says nothing of the kind.
    with_production(&mut s, |p| p.release = Some(migration_release(3)));
    key(&mut s, 'a');
    let text = screen(&s, 160, 45);
    assert!(!approval_rows(&text).join("\n").contains("drops"), "{text}");
}

/// Rolled back from a migration release (the monitoring window's own
/// rollback of v1.8.0): its migrations ran with its deploy and a code
/// rollback leaves them, so the card says the schema is ahead — it read
/// `v1.7.3 ⚠ db→` ("the next release brings one") — and the detail says
/// which migrations stay.
#[test]
fn a_rollback_from_a_migration_release_says_the_schema_stays_ahead() {
    let mut s = console();
    with_production(&mut s, |p| {
        p.release = Some(migration_release(3));
        p.last_deploy = Some(crate::domain::DeployRecord {
            seq: None,
            env: "production".into(),
            version: v("v1.7.3"),
            from_version: Some(v("v1.8.0")),
            at: t0() - Duration::seconds(20),
            actor: "alice".into(),
            kind: crate::domain::DeployKind::Rollback,
            url: None,
        });
    });
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(
            (text.contains("v1.7.3 ⚠ db↑") || text.contains("v1.7.3 ⚠ schema ahead"))
                && !text.contains("db→")
                && !text.contains("db next"),
            "{w}x{h}:\n{text}"
        );
    }
    update_key(&mut s, 'v');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains(
            "v1.8.0's migrations (migrations/0003_orders.sql) ran before the rollback to v1.7.3"
        ),
        "{text}"
    );
    // A rollback from a release without migrations says nothing of it.
    let mut s = console();
    with_production(&mut s, |p| {
        let mut r = migration_release(3);
        r.migrations.clear();
        r.migration_release = false;
        p.release = Some(r);
        p.last_deploy.as_mut().unwrap().kind = crate::domain::DeployKind::Rollback;
        p.last_deploy.as_mut().unwrap().version = v("v1.7.3");
        p.last_deploy.as_mut().unwrap().from_version = Some(v("v1.8.0"));
    });
    assert!(!screen(&s, 160, 45).contains("schema ahead"));
}

/// Rolled back from a migration release, the Go, No-Go and promote dialogs
/// for it said "v1.8.0 changes the database (…): a code rollback will not
/// undo it" — a change still to come, when it had already run here and a
/// code rollback had just not undone it. They say it ran and stayed.
#[test]
fn dialogs_for_a_migration_release_rolled_back_from_say_it_already_ran() {
    let mut s = console();
    approved(&mut s);
    with_production(&mut s, |p| {
        p.release = Some(migration_release(3));
        p.last_deploy = Some(crate::domain::DeployRecord {
            seq: None,
            env: "production".into(),
            version: v("v1.7.3"),
            from_version: Some(v("v1.8.0")),
            at: t0() - Duration::seconds(20),
            actor: "alice".into(),
            kind: crate::domain::DeployKind::Rollback,
            url: None,
        });
    });
    for k in ['a', 'x', 'p'] {
        let mut s = s.clone();
        update_key(&mut s, k);
        let text = screen(&s, 160, 45);
        assert!(
            text.contains("⚠ v1.8.0's 1 migration already ran in production and stayed")
                && text.contains("rollback to v1.7.3: the database is ahead of the code")
                && !text.contains("a code rollback will not undo it"),
            "{k}:\n{text}"
        );
    }
    // Not yet run here: the change is still to come.
    let mut s = console();
    with_production(&mut s, |p| p.release = Some(migration_release(3)));
    update_key(&mut s, 'x');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains(
            "⚠ v1.8.0 changes the database (1 migration): a code rollback will not undo it"
        ),
        "{text}"
    );
}

/// Rolled back by hand from the release promoting would ship again: its
/// Go still stands (only a window's verdict records a No-Go), and the
/// pending panel read "ready: p promotes" for the release just taken out.
/// The engine's plan judges it (a `rolled_back_from` warning, so the CLI
/// and `status --json` say it too); the console renders that warning — in
/// the panel and the promote dialog — and judges nothing of its own.
#[test]
fn a_release_just_rolled_back_from_is_not_offered_as_ready() {
    let mut s = console();
    approved(&mut s);
    with_production(&mut s, |p| {
        p.last_deploy = Some(crate::domain::DeployRecord {
            seq: None,
            env: "production".into(),
            version: v("v1.7.3"),
            from_version: Some(v("v1.8.0")),
            at: t0() - Duration::seconds(20),
            actor: "alice".into(),
            kind: crate::domain::DeployKind::Rollback,
            url: None,
        });
    });
    // No warning in the plan: nothing but the plan says so.
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(!text.contains("rolled back"), "{w}x{h}:\n{text}");
    }
    with_production(&mut s, |p| {
        p.promotion.as_mut().unwrap().gates.push(Gate {
            name: "rolled_back_from".into(),
            ok: false,
            detail: "production was rolled back from v1.8.0 by alice at 2026-11-24 11:59 UTC: \
                     this promotes it again"
                .into(),
            severity: GateSeverity::Warn,
        });
    });
    for (w, h) in [(80, 24), (160, 45)] {
        let text = screen(&s, w, h);
        assert!(
            text.contains("⚠ rolled back") && !text.contains("p promotes after"),
            "{w}x{h}:\n{text}"
        );
    }
    update_key(&mut s, 'p');
    let text = screen(&s, 160, 45);
    assert!(
        text.contains("⚠ rolled_back_from: production was rolled back from v1.8.0 by alice")
            && text.contains("2026-11-24 11:59 UTC: this promotes it again"),
        "{text}"
    );
}

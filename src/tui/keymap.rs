//! The one keymap. Dispatch (`lookup`), the footer hints (`footer`) and the
//! `?` help screen (`help_sections`) all read [`BINDINGS`], so help can never
//! drift from the real bindings.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for; `update` decides what it means in the current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SelectPrev,
    SelectNext,
    Promote,
    /// Choose the version to promote from what the earlier stages run or ran.
    PickVersion,
    Approve,
    Reject,
    Rollback,
    /// The unabridged view of the selected environment (or history record).
    Details,
    ToggleHistory,
    /// Back from the history view to the console.
    Back,
    ScrollUp,
    ScrollDown,
    Top,
    Bottom,
    PageUp,
    PageDown,
    /// Type a filter for the history view.
    Filter,
    Help,
    Confirm,
    Cancel,
    Quit,
    ForceQuit,
}

/// Where the keyboard focus is: the top overlay, or else the main mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// The environment columns with the pending and monitoring panels.
    Main,
    /// The audit log view.
    History,
    /// A confirmation dialog.
    Dialog,
    /// A dialog with a text field: printable keys type into it.
    Input,
    /// The version picker.
    Picker,
    /// A detail view.
    Detail,
    Help,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Context::Main => "Console",
            Context::History => "History view",
            Context::Dialog => "Confirmation dialog",
            Context::Input => "Dialog with a note, or the history filter",
            Context::Picker => "Version picker",
            Context::Detail => "Detail view",
            Context::Help => "Help",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::NONE,
    }
}
const fn code(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}
const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        mods: KeyModifiers::CONTROL,
    }
}

impl Key {
    /// Shift is part of the character (`H`, `?`), so it is ignored; Control
    /// and Alt must match exactly.
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        let same_code = match (self.code, ev.code) {
            (KeyCode::Char(a), KeyCode::Char(b))
                if ev.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                a.eq_ignore_ascii_case(&b)
            }
            (a, b) => a == b,
        };
        same_code && (ev.modifiers & relevant) == (self.mods & relevant)
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in the footer and the help screen.
    pub shown: &'static str,
    pub action: Action,
    /// Short footer label.
    pub label: &'static str,
    /// One line for the help screen.
    pub help: &'static str,
    pub contexts: &'static [Context],
    pub in_footer: bool,
}

use Context::{Detail, Dialog, Help, History, Input, Main, Picker};

const MAIN: &[Context] = &[Main, History];
const ALL: &[Context] = &[Main, History, Dialog, Input, Picker, Detail, Help];

/// In table order; the footer drops the later entries first when the
/// terminal is narrow, but keeps help and quit, then promote, approve, roll
/// back and history (view/footer.rs `rank`).
pub static BINDINGS: &[Binding] = &[
    Binding {
        keys: &[code(KeyCode::Left), k('h')],
        shown: "←→",
        action: Action::SelectPrev,
        label: "select",
        help: "select the environment on the left (← or h) / right (→ or l)",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Right), k('l')],
        shown: "→/l",
        action: Action::SelectNext,
        label: "select",
        help: "select the environment on the right",
        contexts: &[Main],
        in_footer: false,
    },
    Binding {
        keys: &[k('p')],
        shown: "p",
        action: Action::Promote,
        label: "promote",
        help: "promote the selected environment (asks first)",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[k('a')],
        shown: "a",
        action: Action::Approve,
        label: "approve",
        help: "record a Go for the version promoting it would ship, with a note",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[k('r')],
        shown: "r",
        action: Action::Rollback,
        label: "roll back",
        help: "roll the selected environment (or the one in alarm) back",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[k('v'), code(KeyCode::Enter)],
        shown: "v",
        action: Action::Details,
        label: "details",
        help: "everything about the selected environment: state, full verdict, links",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[k('x')],
        shown: "x",
        action: Action::Reject,
        label: "reject",
        help: "record a No-Go for that version, with a note",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[k('P')],
        shown: "P",
        action: Action::PickVersion,
        label: "pick version",
        help: "promote a version of your choice: what the earlier stages run or ran",
        contexts: &[Main],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Up), k('k')],
        shown: "↑↓",
        action: Action::ScrollUp,
        label: "move",
        help: "move the cursor up (↑ or k) / down (↓ or j); scroll help and details",
        contexts: &[History, Picker, Detail, Help],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Down), k('j')],
        shown: "↓/j",
        action: Action::ScrollDown,
        label: "move",
        help: "move the cursor down",
        contexts: &[History, Picker, Detail, Help],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::Up), k('k')],
        shown: "↑↓",
        action: Action::ScrollUp,
        label: "commits",
        help: "scroll the pending release's commits up (↑ or k) / down (↓ or j)",
        contexts: &[Main],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::Down), k('j')],
        shown: "↓/j",
        action: Action::ScrollDown,
        label: "commits",
        help: "scroll the pending release's commits down",
        contexts: &[Main],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::PageUp)],
        shown: "PgUp/PgDn",
        action: Action::PageUp,
        label: "commits",
        help: "the pending release's commits one page up (PageUp) / down (PageDown)",
        contexts: &[Main],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::PageDown)],
        shown: "PgDn",
        action: Action::PageDown,
        label: "commits",
        help: "the pending release's commits one page down",
        contexts: &[Main],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        shown: "Enter",
        action: Action::Details,
        label: "details",
        help: "open the highlighted record in full",
        contexts: &[History],
        in_footer: true,
    },
    Binding {
        keys: &[k('/')],
        shown: "/",
        action: Action::Filter,
        label: "filter",
        help: "show only records containing some text (Enter keeps it, Esc clears it)",
        contexts: &[History],
        in_footer: true,
    },
    Binding {
        keys: &[k('g'), code(KeyCode::Home)],
        shown: "g/G",
        action: Action::Top,
        label: "first/last",
        help: "jump to the newest record (g or Home) / the oldest (G or End)",
        contexts: &[History],
        in_footer: true,
    },
    Binding {
        keys: &[k('G'), code(KeyCode::End)],
        shown: "G",
        action: Action::Bottom,
        label: "last",
        help: "jump to the oldest record",
        contexts: &[History],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::PageUp)],
        shown: "PgUp/PgDn",
        action: Action::PageUp,
        label: "page",
        help: "one page up (PageUp) / down (PageDown)",
        contexts: &[History],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::PageDown)],
        shown: "PgDn",
        action: Action::PageDown,
        label: "page",
        help: "one page down",
        contexts: &[History],
        in_footer: false,
    },
    Binding {
        keys: &[code(KeyCode::Esc)],
        shown: "Esc",
        action: Action::Back,
        label: "console",
        help: "back to the console",
        contexts: &[History],
        in_footer: true,
    },
    Binding {
        keys: &[k('H'), code(KeyCode::Tab)],
        shown: "H",
        action: Action::ToggleHistory,
        label: "history",
        help: "switch between the console and the audit log (H or Tab)",
        contexts: MAIN,
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Enter)],
        shown: "Enter",
        action: Action::Confirm,
        label: "confirm",
        help: "do what the dialog says (in the picker: promote the highlighted version)",
        contexts: &[Dialog, Input, Picker],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Esc)],
        shown: "Esc",
        action: Action::Cancel,
        label: "cancel",
        help: "close the dialog without doing anything",
        contexts: &[Dialog, Input, Picker],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Esc), code(KeyCode::Enter), k('v'), k('q')],
        shown: "Esc",
        action: Action::Cancel,
        label: "close",
        help: "close the detail view (Esc, Enter, v or q)",
        contexts: &[Detail],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Esc), k('?'), k('q')],
        shown: "Esc",
        action: Action::Cancel,
        label: "close help",
        help: "close this help (Esc, ? or q)",
        contexts: &[Help],
        in_footer: true,
    },
    Binding {
        keys: &[code(KeyCode::Esc)],
        shown: "Esc",
        action: Action::Cancel,
        label: "dismiss",
        help: "dismiss the alarm banner and notices",
        contexts: &[Main],
        in_footer: false,
    },
    Binding {
        keys: &[k('?')],
        shown: "?",
        action: Action::Help,
        label: "help",
        help: "show every key",
        contexts: MAIN,
        in_footer: true,
    },
    Binding {
        keys: &[k('q')],
        shown: "q",
        action: Action::Quit,
        label: "quit",
        help: "quit (asks first while an action or a monitoring window runs)",
        contexts: MAIN,
        in_footer: true,
    },
    Binding {
        keys: &[ctrl('c')],
        shown: "Ctrl-C",
        action: Action::ForceQuit,
        label: "quit now",
        help: "quit at once, from anywhere",
        contexts: ALL,
        in_footer: false,
    },
];

/// Actions listed in help together with the binding before them.
pub fn paired(a: Action) -> bool {
    matches!(
        a,
        Action::SelectNext | Action::ScrollDown | Action::Bottom | Action::PageDown
    )
}

/// The action `ev` is bound to in `ctx`, if any.
pub fn lookup(ctx: Context, ev: &KeyEvent) -> Option<Action> {
    BINDINGS
        .iter()
        .filter(|b| b.contexts.contains(&ctx))
        .find(|b| b.keys.iter().any(|key| key.matches(ev)))
        .map(|b| b.action)
}

/// `(keys, label)` pairs for the footer in `ctx`, in table order.
pub fn footer(ctx: Context) -> Vec<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.in_footer && b.contexts.contains(&ctx))
        .map(|b| (b.shown, b.label))
        .collect()
}

/// The help screen: for each context, `(keys, explanation)` lines.
pub fn help_sections() -> Vec<(Context, Vec<(String, &'static str)>)> {
    [Main, History, Dialog, Input, Picker, Detail, Help]
        .into_iter()
        .map(|ctx| {
            let lines = BINDINGS
                .iter()
                .filter(|b| b.contexts.contains(&ctx))
                .filter(|b| ctx == Main || !b.contexts.contains(&Main))
                .filter(|b| !paired(b.action))
                .map(|b| (keys_text(b), b.help))
                .collect();
            (ctx, lines)
        })
        .filter(|(_, lines): &(Context, Vec<_>)| !lines.is_empty())
        .collect()
}

fn keys_text(b: &Binding) -> String {
    match b.action {
        Action::SelectPrev => "← → h l".into(),
        Action::ScrollUp => "↑ ↓ k j".into(),
        Action::Top => "g G Home End".into(),
        Action::PageUp => "PgUp PgDn".into(),
        _ => b
            .keys
            .iter()
            .map(|key| key_name(*key))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn key_name(key: Key) -> String {
    let base = match key.code {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        other => format!("{other:?}"),
    };
    if key.mods.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{}", base.to_uppercase())
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(c: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(c, m)
    }

    #[test]
    fn dispatch_depends_on_context() {
        let p = ev(KeyCode::Char('p'), KeyModifiers::NONE);
        assert_eq!(lookup(Main, &p), Some(Action::Promote));
        assert_eq!(lookup(History, &p), None);
        assert_eq!(lookup(Input, &p), None, "typing a note must not promote");
        let esc = ev(KeyCode::Esc, KeyModifiers::NONE);
        assert_eq!(lookup(Dialog, &esc), Some(Action::Cancel));
        let q = ev(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(lookup(Main, &q), Some(Action::Quit));
        assert_eq!(lookup(Help, &q), Some(Action::Cancel));
        assert_eq!(lookup(Input, &q), None);
        assert_eq!(
            lookup(History, &esc),
            Some(Action::Back),
            "Esc leaves the history"
        );
        let enter = ev(KeyCode::Enter, KeyModifiers::NONE);
        assert_eq!(lookup(History, &enter), Some(Action::Details));
        assert_eq!(lookup(Picker, &enter), Some(Action::Confirm));
        let big_p = ev(KeyCode::Char('P'), KeyModifiers::SHIFT);
        assert_eq!(lookup(Main, &big_p), Some(Action::PickVersion));
    }

    #[test]
    fn shift_is_part_of_the_char_and_control_is_not() {
        let big_h = ev(KeyCode::Char('H'), KeyModifiers::SHIFT);
        assert_eq!(lookup(Main, &big_h), Some(Action::ToggleHistory));
        let small_h = ev(KeyCode::Char('h'), KeyModifiers::NONE);
        assert_eq!(lookup(Main, &small_h), Some(Action::SelectPrev));
        let ctrl_c = ev(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for ctx in [Main, History, Dialog, Input, Picker, Detail, Help] {
            assert_eq!(lookup(ctx, &ctrl_c), Some(Action::ForceQuit));
        }
        let ctrl_p = ev(KeyCode::Char('p'), KeyModifiers::CONTROL);
        assert_eq!(lookup(Main, &ctrl_p), None);
    }

    #[test]
    fn footer_and_help_come_from_the_table() {
        let main: Vec<_> = footer(Main).into_iter().map(|(k, _)| k).collect();
        assert_eq!(main, ["←→", "p", "a", "r", "v", "x", "P", "H", "?", "q"]);
        assert_eq!(footer(Dialog), [("Enter", "confirm"), ("Esc", "cancel")]);
        for b in BINDINGS {
            let listed = help_sections()
                .iter()
                .any(|(_, lines)| lines.iter().any(|(_, h)| *h == b.help));
            assert!(listed || paired(b.action), "{} missing from help", b.help);
        }
    }
}

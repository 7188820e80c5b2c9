//! The layering DESIGN.md asks for, checked on the sources: `backends`
//! and `store` never import from `engine`, `cli` or `tui`; `domain`,
//! `monitor` and the text hygiene module are pure (none of those, nor the
//! I/O layers).

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn offenders(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let dir = root.join(layer);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    } else {
        files.push(root.join(format!("{layer}.rs")));
    }
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for m in forbidden {
                if code.contains(&format!("crate::{m}::")) || code.contains(&format!("crate::{m};"))
                {
                    found.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn backends_and_store_never_import_engine_cli_or_tui() {
    for layer in ["backends", "store"] {
        let bad = offenders(layer, &["engine", "cli", "tui"]);
        assert!(bad.is_empty(), "{layer} reaches up:\n{}", bad.join("\n"));
    }
}

#[test]
fn the_low_modules_import_no_upper_layer() {
    for layer in ["domain", "monitor", "text", "host", "paths"] {
        let bad = offenders(layer, &["engine", "cli", "tui", "backends", "store"]);
        assert!(bad.is_empty(), "{layer} reaches up:\n{}", bad.join("\n"));
    }
}

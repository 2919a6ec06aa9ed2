//! The layering of `src/` (docs/architecture.md, "Layout"), checked: a layer imports only
//! the layers below it, and the domain imports neither the crate's other
//! layers nor lapin, reqwest or tokio; inside `worker/`, a stage imports
//! only the stages below it. Reads the sources as text.

use std::{collections::BTreeMap, fs, path::Path};

/// Top-level modules, bottom first, with the modules each may import.
const ALLOWED: [(&str, &[&str]); 10] = [
    ("domain", &["domain"]),
    ("clock", &["clock"]),
    ("config", &["config", "domain", "broker"]),
    ("broker", &["broker", "domain"]),
    ("http", &["http", "domain"]),
    ("telemetry", &["telemetry", "domain"]),
    ("error", &["error", "broker", "domain"]),
    (
        "worker",
        &[
            "worker",
            "domain",
            "broker",
            "http",
            "telemetry",
            "config",
            "error",
            "clock",
        ],
    ),
    (
        "app",
        &[
            "app",
            "worker",
            "domain",
            "broker",
            "http",
            "telemetry",
            "config",
            "error",
            "clock",
        ],
    ),
    (
        "cli",
        &[
            "cli",
            "app",
            "domain",
            "broker",
            "http",
            "telemetry",
            "config",
            "error",
            "clock",
        ],
    ),
];

/// The stages of `worker/`, bottom first: each imports only the stages
/// before it (`mod` is `worker/mod.rs`, the reconnect loop on top).
const WORKER_STAGES: [&str; 14] = [
    "drain",
    "burst",
    "limits",
    "receiver_health",
    "settle",
    "republish",
    "outcomes",
    "shared",
    "unsettled",
    "delivery",
    "task",
    "lane",
    "session",
    "mod",
];

/// Crates the pure domain may not use.
const IMPURE: [&str; 4] = ["lapin", "reqwest", "tokio", "axum"];

/// A source file's text without its comment lines: doc comments may name
/// any module.
fn code_of(file: &Path) -> String {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level crate modules a file names (`crate::x` and `use crate::{x, ...}`).
fn crate_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        found.extend(heads(rest));
    }
    found.retain(|m| !m.is_empty() && m != "self" && m.chars().next().unwrap().is_lowercase());
    found
}

/// The first segment of each path a `use` or a path names at the start of
/// `rest` (`a::b` gives `a`; `{a::b, c}` gives `a` and `c`).
fn heads(rest: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(group) = rest.strip_prefix('{') {
        // Only the first segment of each item of the group.
        let mut depth = 0;
        let mut item = String::new();
        for c in group.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.push(first_segment(&item));
                    item.clear();
                    continue;
                }
                _ => {}
            }
            if depth == 0 && c != '{' {
                item.push(c);
            }
        }
        found.push(first_segment(&item));
    } else {
        found.push(first_segment(rest));
    }
    found
}

/// The module path of a file below `src/worker` (`worker/lane.rs` is
/// `[lane]`, `worker/mod.rs` is `[]`, `worker/limits/tests.rs` is
/// `[limits, tests]`).
fn worker_path(worker: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(worker).unwrap().with_extension("");
    let mut path: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|last| last == "mod") {
        path.pop();
    }
    path
}

/// The stages of `worker/` a file at `path` (see [`worker_path`]) names:
/// through `self::`, `super::` chains and `crate::worker::`.
fn worker_stages_named(path: &[String], text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let start_of_path = |i: usize| {
            let before = &text[..at + i];
            !before.ends_with("::") && !before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
        };
        let (base, after) = if rest.starts_with("crate::worker::") && start_of_path(0) {
            (Vec::new(), &rest["crate::worker::".len()..])
        } else if rest.starts_with("self::") && start_of_path(0) {
            (path.to_vec(), &rest["self::".len()..])
        } else if rest.starts_with("super::") && start_of_path(0) {
            let mut after = rest;
            let mut up = 0;
            while let Some(r) = after.strip_prefix("super::") {
                after = r;
                up += 1;
            }
            // Inside a file `super` is its parent; `path` names the file.
            (path[..path.len().saturating_sub(up)].to_vec(), after)
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        at = text.len() - after.len();
        match base.first() {
            Some(stage) => found.push(stage.clone()),
            None => found.extend(heads(after)),
        }
    }
    found.retain(|m| !m.is_empty() && m != "self" && m.chars().next().unwrap().is_lowercase());
    found
}

fn first_segment(s: &str) -> String {
    s.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_layer_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<_, _> = ALLOWED.into_iter().collect();
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let may = allowed
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{module} (in {file:?}) has no place in the layer table"));
        let text = code_of(file);
        for used in crate_modules(&text) {
            // `crate::Error` and friends are re-exports at the root.
            if !may.contains(&used.as_str()) && allowed.contains_key(used.as_str()) {
                violations.push(format!("{}: {module} imports {used}", file.display()));
            }
        }
        if module == "domain" {
            for krate in IMPURE {
                if text.contains(&format!("{krate}::")) {
                    violations.push(format!("{}: the domain uses {krate}", file.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering broken:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_worker_stage_imports_only_the_stages_below_it() {
    let worker = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/worker");
    let place = |stage: &str| {
        WORKER_STAGES
            .iter()
            .position(|s| *s == stage)
            .unwrap_or_else(|| panic!("worker stage {stage} has no place in WORKER_STAGES"))
    };
    let mut files = Vec::new();
    sources(&worker, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let path = worker_path(&worker, file);
        let stage = path.first().map_or("mod", String::as_str);
        for used in worker_stages_named(&path, &code_of(file)) {
            if place(&used) > place(stage) {
                violations.push(format!("{}: {stage} imports {used}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "worker stages import upward:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_worker_stage_imports() {
    let lane = vec!["lane".to_string()];
    assert_eq!(
        worker_stages_named(
            &lane,
            "use super::{delivery::{A, B}, settle::{self, C}};\nlet x = super::session::f();"
        ),
        vec!["delivery", "settle", "session"]
    );
    let limits_tests = vec!["limits".to_string(), "tests".to_string()];
    assert_eq!(
        worker_stages_named(
            &limits_tests,
            "use super::*;\nuse super::super::drain::Drain;\nuse crate::worker::lane::Lane;"
        ),
        vec!["limits", "drain", "lane"]
    );
    assert_eq!(
        worker_stages_named(&[], "use self::{drain::Drain, session::run};"),
        vec!["drain", "session"]
    );
    assert!(worker_stages_named(&lane, "Self::new(); my_super::x;").is_empty());
}

#[test]
fn the_checker_sees_imports() {
    assert_eq!(
        crate_modules("use crate::{broker::{a, b}, domain::x};\nlet y = crate::worker::z;"),
        vec!["broker", "domain", "worker"]
    );
}
